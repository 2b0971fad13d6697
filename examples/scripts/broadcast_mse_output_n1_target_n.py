# EXPECT: loss-broadcast
"""Regression MLP on scikit-learn's diabetes data (disease progression after a year).

The model outputs shape [N, 1] and the targets have shape [N]. MSELoss broadcasts
the pair to [N, N] and averages the error of every prediction against every target
in the batch, so the best the network can do is predict the batch mean for every
patient: the test R^2 stays near zero. (torch's UserWarning about it is easy to miss.)
"""
import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

np.random.seed(0)
torch.manual_seed(0)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(X_train)
X_train = torch.FloatTensor(scaler.transform(X_train))
X_test = torch.FloatTensor(scaler.transform(X_test))
y_mu, y_sd = y_train.mean(), y_train.std()
y_train = torch.FloatTensor((y_train - y_mu) / y_sd)

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

batch_size = 32
for epoch in range(30):
    perm = np.random.permutation(len(X_train))
    batch_losses = []
    for i in range(0, len(perm), batch_size):
        idx = perm[i:i + batch_size]
        pred = model(X_train[idx])
        loss = criterion(pred, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
    if epoch % 5 == 4:
        with torch.no_grad():
            test_pred = model(X_test).numpy().ravel() * y_sd + y_mu
        print(f"epoch {epoch + 1}: train mse {np.mean(batch_losses):.3f}, test r2 {r2_score(y_test, test_pred):.3f}")
