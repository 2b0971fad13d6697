# EXPECT: stale-gradients
"""Wine-cultivar classifier trained on hand-sliced mini-batches.

`opt.zero_grad` is written without the call parentheses: it only names the method,
nothing is cleared, so each backward() adds onto the gradients of every earlier batch
and the optimizer steps on that running sum rather than on the current batch.
"""
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn

torch.manual_seed(0)
np.random.seed(0)

data = load_wine()
X_tr, X_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3,
                                          random_state=1, stratify=data.target)
mean, std = X_tr.mean(0), X_tr.std(0)
X_tr = torch.from_numpy((X_tr - mean) / std).float()
X_te = torch.from_numpy((X_te - mean) / std).float()
y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)


class WineNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(13, hidden)
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


net = WineNet()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
batch_size = 16

for epoch in range(15):
    perm = np.random.permutation(len(X_tr))
    epoch_loss, n_batches = 0.0, 0
    for i in range(0, len(X_tr), batch_size):
        idx = perm[i:i + batch_size]
        opt.zero_grad  # noqa: B018 -- the bug this example shows: the call is missing
        out = net(X_tr[idx])
        loss = F.cross_entropy(out, y_tr[idx])
        loss.backward()
        opt.step()
        epoch_loss += loss.item()
        n_batches += 1
    with torch.no_grad():
        acc = (net(X_te).argmax(dim=1) == y_te).float().mean()
    print(f"[{epoch:02d}] loss={epoch_loss / n_batches:.3f} acc={acc:.2%}")
