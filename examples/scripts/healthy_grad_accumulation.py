# EXPECT: healthy
"""Digits MLP trained with gradient accumulation (effective batch 4 x 16 = 64).

Tempts `stale-gradients`: backward() runs on every batch but zero_grad() only every
fourth batch, so most backward() calls find gradients already there. That is the
point of accumulation: the loss is divided by the number of accumulated batches and
the optimizer steps (and then clears) exactly once per group of four.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ACCUM_STEPS = 4
torch.manual_seed(0)

X, y = load_digits(return_X_y=True)
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_tr)
train_ds = TensorDataset(torch.tensor(scaler.transform(X_tr), dtype=torch.float32), torch.tensor(y_tr))
X_va = torch.tensor(scaler.transform(X_va), dtype=torch.float32)
y_va = torch.tensor(y_va)
loader = DataLoader(train_ds, batch_size=16, shuffle=True, drop_last=True)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

for epoch in range(5):
    model.train()
    optimizer.zero_grad()
    seen_loss = 0.0
    for step, (xb, yb) in enumerate(loader, start=1):
        loss = criterion(model(xb), yb) / ACCUM_STEPS
        loss.backward()
        seen_loss += loss.item() * ACCUM_STEPS
        if step % ACCUM_STEPS == 0:
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        val_acc = (model(X_va).argmax(1) == y_va).float().mean().item()
    print(f"epoch {epoch + 1}: train loss {seen_loss / len(loader):.4f}  val acc {val_acc:.3f}")
