# EXPECT: healthy
"""Iris classifier written as a flat notebook-style script: no functions, no classes,
the training loop at module level, batches sliced by hand.

Tempts a false alarm only through its shape: there is no DataLoader whose re-iteration
marks an epoch and no function to hook; the epoch boundary is the evaluation under
torch.no_grad(). The loop itself is correct.
"""
import numpy as np
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

torch.manual_seed(42)
np.random.seed(42)

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.3, random_state=42,
                                                    stratify=iris.target)
sc = StandardScaler()
X_train = torch.tensor(sc.fit_transform(X_train), dtype=torch.float32)
X_test = torch.tensor(sc.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.long)
y_test = torch.tensor(y_test, dtype=torch.long)

model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-3)
history = []

for epoch in range(15):
    idx = np.random.permutation(len(X_train))
    for i in range(0, len(idx), 10):
        b = idx[i:i + 10]
        opt.zero_grad()
        loss = loss_fn(model(X_train[b]), y_train[b])
        loss.backward()
        opt.step()
    with torch.no_grad():
        test_loss = loss_fn(model(X_test), y_test).item()
        test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    history.append(test_loss)
    if epoch % 5 == 0 or epoch == 14:
        print(f"epoch {epoch:2d}  train batch loss {loss.item():.4f}  test loss {test_loss:.4f}  "
              f"test acc {test_acc:.3f}")
