# EXPECT: healthy
"""Digits classifier on top of a frozen convolutional front end (fixed edge and
blob filters: Sobel x/y, Laplacian, box blur), with only the head trained.

Tempts `no-gradient-flow`: the conv layer's parameters never receive a gradient. They
are frozen on purpose (requires_grad=False) and the optimizer is built over the
trainable parameters only, so every parameter the optimizer holds gets a gradient.
"""
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

FILTERS = [
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
]


class EdgeFeatureNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.front = nn.Conv2d(1, len(FILTERS), 3, padding=1, bias=False)
        with torch.no_grad():
            self.front.weight.copy_(torch.tensor(FILTERS, dtype=torch.float32).unsqueeze(1) / 4)
        self.front.requires_grad_(False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * len(FILTERS) * 64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        edges = self.front(x)
        return self.head(torch.cat([F.relu(edges), F.relu(-edges)], dim=1))


torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
y = torch.tensor(digits.target)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

model = EdgeFeatureNet()
optimizer = torch.optim.SGD((p for p in model.parameters() if p.requires_grad), lr=0.05, momentum=0.9)

for epoch in range(8):
    model.train()
    perm = torch.randperm(len(X_train))
    total = 0.0
    for i in range(0, len(X_train), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch + 1}: loss {total / len(X_train):.4f}  test acc {acc:.3f}")
