# EXPECT: wrong-mode
"""Breast-cancer MLP with batch norm and dropout, sanity-checked before training.

The script puts the model in eval mode to print the accuracy of the untrained
network, then goes straight into the training loop without calling model.train().
Every training step therefore runs with dropout disabled and batch norm using its
running statistics (never updated, still at 0/1) instead of the batch statistics.
"""
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)

features, target = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(features, target, test_size=0.25, random_state=7)
scaler = StandardScaler().fit(X_train)
X_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32)
y_test = torch.tensor(y_test, dtype=torch.float32)

model = nn.Sequential(
    nn.Linear(30, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
    nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
    nn.Linear(64, 1),
)
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)


def accuracy(x, y):
    with torch.no_grad():
        return ((model(x).squeeze(1) > 0).float() == y).float().mean().item()


model.eval()
print(f"untrained test accuracy: {accuracy(X_test, y_test):.3f}")

for epoch in range(10):
    epoch_loss = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb).squeeze(1), yb)
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item() * len(xb)
    print(f"epoch {epoch:2d}  loss {epoch_loss / len(X_train):.4f}  test acc {accuracy(X_test, y_test):.3f}")
