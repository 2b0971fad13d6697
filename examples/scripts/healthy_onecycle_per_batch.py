# EXPECT: healthy
"""Breast-cancer MLP trained with a OneCycleLR schedule stepped after every batch.

Tempts `lr-too-low` (a scheduler stepped per batch, the LR changing at every step,
and ending thousands of times below its peak): OneCycleLR is designed to be stepped once per batch,
with total_steps = epochs x batches per epoch. It warms up from max_lr/25 to max_lr
over the first 30% of training and only then anneals towards zero.
"""
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = 10
torch.manual_seed(0)

X, y = load_breast_cancer(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=1, stratify=y)
scaler = StandardScaler().fit(X_tr)
tr = TensorDataset(torch.tensor(scaler.transform(X_tr), dtype=torch.float32), torch.tensor(y_tr, dtype=torch.float32))
X_te = torch.tensor(scaler.transform(X_te), dtype=torch.float32)
y_te = torch.tensor(y_te, dtype=torch.float32)
loader = DataLoader(tr, batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
scheduler = OneCycleLR(optimizer, max_lr=1e-2, epochs=EPOCHS, steps_per_epoch=len(loader))

for epoch in range(EPOCHS):
    model.train()
    running = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb).squeeze(1), yb)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item() * len(yb)
    model.eval()
    with torch.no_grad():
        acc = ((model(X_te).squeeze(1) > 0).float() == y_te).float().mean().item()
    lr = scheduler.get_last_lr()[0]
    print(f"epoch {epoch + 1:2d}  lr {lr:.2e}  loss {running / len(tr):.4f}  test acc {acc:.3f}")
