# EXPECT: label-out-of-range
# ALSO: numerical-instability, loss-sign-flipped
"""Breast-cancer classifier whose labels were recoded to -1/+1 (SVM convention) and
then trained with BCEWithLogitsLoss, which expects targets in [0, 1].

BCEWithLogitsLoss does not check the range: for a target of -1 the "loss" is
log(sigmoid(z)) - 2*log(1 - sigmoid(z)), which has no minimum and goes to minus
infinity as the logit z goes to minus infinity. The loss turns negative and keeps
falling without bound while the logits of the -1 class are pushed to huge values.
"""
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)

data = load_breast_cancer()
y = 2 * data.target - 1
X_tr, X_te, y_tr, y_te = train_test_split(data.data, y, test_size=0.2, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_tr)
X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
train_ds = TensorDataset(torch.tensor(X_tr, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.float32))
X_te = torch.tensor(X_te, dtype=torch.float32)
y_te = torch.tensor(y_te, dtype=torch.float32)
loader = DataLoader(train_ds, batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

for epoch in range(10):
    losses = []
    for xb, yb in loader:
        optimizer.zero_grad()
        logits = model(xb).squeeze(-1)
        loss = criterion(logits, yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        test_logits = model(X_te).squeeze(-1)
        acc = (torch.where(test_logits > 0, 1.0, -1.0) == y_te).float().mean().item()
    print(f"epoch {epoch + 1}: loss {sum(losses) / len(losses):.3f}  test acc {acc:.3f}  "
          f"max |logit| {test_logits.abs().max().item():.1f}")
