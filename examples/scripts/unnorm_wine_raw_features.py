# EXPECT: input-not-normalized
"""Wine-cultivar MLP fed the 13 chemical measurements exactly as loaded.

The features span wildly different scales (hue ~1, magnesium ~100, proline ~300-1700)
and none is standardised, so proline dominates every pre-activation: the first
layer's outputs are in the hundreds, SGD has to use a learning rate tiny enough for
proline and then barely moves the weights of the other twelve features.
"""
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn

torch.manual_seed(0)

wine = load_wine()
X_train, X_test, y_train, y_test = train_test_split(
    wine.data, wine.target, test_size=0.25, random_state=0, stratify=wine.target)
X_train = torch.tensor(X_train, dtype=torch.float32)
X_test = torch.tensor(X_test, dtype=torch.float32)
y_train = torch.tensor(y_train)
y_test = torch.tensor(y_test)

model = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)

BATCH = 8
for epoch in range(20):
    model.train()
    perm = torch.randperm(len(X_train))
    epoch_loss = 0.0
    for i in range(0, len(X_train), BATCH):
        idx = perm[i:i + BATCH]
        optimizer.zero_grad()
        loss = loss_fn(model(X_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(1) == y_test).float().mean().item()
    if epoch % 4 == 3:
        print(f"epoch {epoch + 1:2d}  loss {epoch_loss / len(X_train):.4f}  accuracy {accuracy:.3f}")
