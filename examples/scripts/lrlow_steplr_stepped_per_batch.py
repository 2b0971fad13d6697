# EXPECT: lr-too-low
"""Digits MLP with SGD and a StepLR schedule meant to decay the LR every 10 epochs.

scheduler.step() is called inside the batch loop, so StepLR(step_size=10, gamma=0.1)
divides the LR by 10 every 10 *batches*: after 40 batches (not even one epoch) the
LR is 1/10000 of its start and the model is frozen at whatever it reached in its
first few dozen steps.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
scaler = StandardScaler()
X_train = torch.tensor(scaler.fit_transform(X_train), dtype=torch.float32)
X_val = torch.tensor(scaler.transform(X_val), dtype=torch.float32)
train_ds = TensorDataset(X_train, torch.tensor(y_train))
val_ds = TensorDataset(X_val, torch.tensor(y_val))
train_loader = DataLoader(train_ds, batch_size=32, shuffle=True)
val_loader = DataLoader(val_ds, batch_size=256)

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)

for epoch in range(15):
    model.train()
    train_loss = 0.0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        train_loss += loss.item() * inputs.size(0)

    model.eval()
    correct = 0
    with torch.no_grad():
        for inputs, targets in val_loader:
            correct += (model(inputs).argmax(dim=1) == targets).sum().item()
    lr = optimizer.param_groups[0]["lr"]
    print(f"epoch {epoch + 1:2d} lr {lr:.2e} train_loss {train_loss / len(train_ds):.4f} "
          f"val_acc {correct / len(val_ds):.3f}")
