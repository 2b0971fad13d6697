# EXPECT: healthy
"""Breast-cancer MLP with dropout, validated after every epoch the proper way:
model.eval() and torch.no_grad() for the validation pass, model.train() again at
the top of the next epoch, best weights kept by validation loss.

Tempts `wrong-mode` (the model is in eval mode between epochs) and a leak alarm (the
best state_dict is copied and kept). Both are correct: every training step runs in
train mode, and the kept copy is detached tensors, not a graph.
"""
import copy

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def run_validation(model, loader, criterion):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x).squeeze(1)
            loss_sum += criterion(logits, y).item() * len(y)
            correct += ((logits > 0).float() == y).sum().item()
    n = len(loader.dataset)
    return loss_sum / n, correct / n


torch.manual_seed(0)
X, y = load_breast_cancer(return_X_y=True)
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_tr)


def to_ds(a, b):
    return TensorDataset(torch.tensor(scaler.transform(a), dtype=torch.float32), torch.tensor(b, dtype=torch.float32))


train_loader = DataLoader(to_ds(X_tr, y_tr), batch_size=32, shuffle=True)
val_loader = DataLoader(to_ds(X_va, y_va), batch_size=64)

model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 32), nn.ReLU(),
                      nn.Dropout(0.3), nn.Linear(32, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
best_loss, best_state = float("inf"), None

for epoch in range(12):
    model.train()
    train_loss = 0.0
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x).squeeze(1), y)
        loss.backward()
        optimizer.step()
        train_loss += loss.item() * len(y)
    val_loss, val_acc = run_validation(model, val_loader, criterion)
    if val_loss < best_loss:
        best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
    train_loss /= len(train_loader.dataset)
    print(f"epoch {epoch + 1:2d}  train {train_loss:.4f}  val {val_loss:.4f}  acc {val_acc:.3f}")

model.load_state_dict(best_state)
print(f"best val loss {best_loss:.4f}")
