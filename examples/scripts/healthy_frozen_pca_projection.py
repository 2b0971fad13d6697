# EXPECT: healthy
"""Digits classifier whose first layer is a fixed PCA projection (fitted with
scikit-learn, copied into an nn.Linear and frozen), with a small MLP head on top.

Tempts `no-gradient-flow`: the optimizer is built over model.parameters(), so it
holds the frozen projection's weight and bias, which never receive a gradient. That
is intended (requires_grad=False); optimizers skip parameters whose grad is None,
and the trainable head gets its gradient at every step.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)

pca = PCA(n_components=24, whiten=True, random_state=0).fit(X_tr)
projection = nn.Linear(64, 24)
with torch.no_grad():
    scale = torch.tensor(1.0 / pca.explained_variance_ ** 0.5, dtype=torch.float32)
    weight = torch.tensor(pca.components_, dtype=torch.float32) * scale[:, None]
    projection.weight.copy_(weight)
    projection.bias.copy_(-weight @ torch.tensor(pca.mean_, dtype=torch.float32))
projection.requires_grad_(False)

model = nn.Sequential(projection, nn.Linear(24, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()

train_loader = DataLoader(TensorDataset(torch.tensor(X_tr, dtype=torch.float32), torch.tensor(y_tr)),
                          batch_size=32, shuffle=True)
X_te, y_te = torch.tensor(X_te, dtype=torch.float32), torch.tensor(y_te)

for epoch in range(6):
    model.train()
    losses = []
    for xb, yb in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        acc = (model(X_te).argmax(1) == y_te).float().mean().item()
    print(f"epoch {epoch + 1}: loss {sum(losses) / len(losses):.4f}  test acc {acc:.3f}")
