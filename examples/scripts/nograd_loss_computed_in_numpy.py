# EXPECT: no-gradient-flow
"""Disease-progression regression on scikit-learn's diabetes data, scored by RMSE.

The RMSE is computed in numpy and wrapped back with torch.tensor(..., requires_grad=True).
That makes a brand-new leaf tensor with no history: backward() runs without error but
stops at that leaf, so the network's weights never receive a gradient and Adam never
moves them: the test RMSE is the same every epoch.
"""
import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

torch.manual_seed(0)
np.random.seed(0)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
x_scaler = StandardScaler().fit(X_train)
y_mean, y_std = y_train.mean(), y_train.std()
X_train = torch.tensor(x_scaler.transform(X_train), dtype=torch.float32)
X_test = torch.tensor(x_scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor((y_train - y_mean) / y_std, dtype=torch.float32)
y_test = torch.tensor((y_test - y_mean) / y_std, dtype=torch.float32)

model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)


def rmse(pred, target):
    err = pred.detach().numpy() - target.numpy()
    return torch.tensor(np.sqrt(np.mean(err ** 2)), requires_grad=True)


batch_size = 32
for epoch in range(20):
    order = torch.randperm(len(X_train))
    epoch_losses = []
    for start in range(0, len(X_train), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = rmse(model(X_train[idx]).squeeze(1), y_train[idx])
        loss.backward()
        optimizer.step()
        epoch_losses.append(loss.item())
    with torch.no_grad():
        test_rmse = torch.sqrt(((model(X_test).squeeze(1) - y_test) ** 2).mean()).item()
    if epoch % 2 == 1:
        print(f"epoch {epoch + 1:2d}  train rmse {np.mean(epoch_losses):.3f}  test rmse {test_rmse:.3f}")
