# EXPECT: no-gradient-flow
"""Iris classifier with a cosine learning-rate schedule.

The batch loop calls loss.backward() and then scheduler.step(), but never
optimizer.step(): the scheduler only changes the learning rate, nothing ever applies
the gradients, so the weights stay at their random initial values and the
accuracy never moves.
"""
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.3,
                                                    stratify=iris.target, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train)
y_test = torch.tensor(y_test)

model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
EPOCHS, BATCH = 40, 16
steps_per_epoch = int(np.ceil(len(X_train) / BATCH))
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * steps_per_epoch)

for epoch in range(EPOCHS):
    order = rng.permutation(len(X_train))
    losses = []
    for start in range(0, len(X_train), BATCH):
        batch = order[start:start + BATCH]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X_train[batch]), y_train[batch])
        loss.backward()
        scheduler.step()
        losses.append(loss.item())
    if (epoch + 1) % 5 == 0:
        with torch.no_grad():
            acc = (model(X_test).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}  test acc {acc:.3f}  lr {scheduler.get_last_lr()[0]:.4f}")
