# EXPECT: healthy
"""Digits MLP with an exponential moving average (EMA) of its weights, evaluated
alongside the raw model.

Tempts `no-gradient-flow` (a second instance of the model whose parameters never get
a gradient and are never in an optimizer) and `memory-leak` (a deep copy of the model
that lives for the whole run). The EMA copy is updated in place under no_grad after
each optimizer step, as intended; the optimizer holds the trained model's parameters.
"""
import copy

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@torch.no_grad()
def update_ema(ema_model, model, decay=0.95):
    for ema_p, p in zip(ema_model.parameters(), model.parameters()):
        ema_p.mul_(decay).add_(p, alpha=1 - decay)


@torch.no_grad()
def accuracy(net, x, y):
    net.eval()
    return (net(x).argmax(1) == y).float().mean().item()


torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=5, stratify=y)
scaler = StandardScaler().fit(X_tr)
X_tr, X_va = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_va))
y_tr, y_va = torch.tensor(y_tr), torch.tensor(y_va)
loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
ema_model = copy.deepcopy(model).requires_grad_(False)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
criterion = nn.CrossEntropyLoss()

for epoch in range(6):
    model.train()
    running = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        update_ema(ema_model, model)
        running += loss.item() * len(yb)
    print(f"epoch {epoch + 1}: loss {running / len(X_tr):.4f}  val acc {accuracy(model, X_va, y_va):.3f}  "
          f"ema val acc {accuracy(ema_model, X_va, y_va):.3f}")
