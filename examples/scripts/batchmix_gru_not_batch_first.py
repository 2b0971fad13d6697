# EXPECT: batch-mixing
"""A GRU that tells apart three kinds of synthetic sensor traces.

The batches are shaped [batch, time, features], but the GRU is built without
batch_first=True, so it reads them as [time, batch, features]: it runs *across the
batch*, and the output for one trace is computed from the traces before it in the
same batch. Predictions depend on which other samples share the batch.
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(0)
torch.manual_seed(0)


def make_traces(n, length=25):
    kind = rng.integers(0, 3, size=n)
    t = np.linspace(0, 1, length)
    base = np.stack([np.sin(2 * np.pi * 2 * t), np.sign(np.sin(2 * np.pi * 2 * t)), 2 * t - 1])
    x = base[kind] * rng.uniform(0.5, 1.5, size=(n, 1)) + 0.4 * rng.standard_normal((n, length))
    return torch.tensor(x[..., None], dtype=torch.float32), torch.tensor(kind)


class TraceNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = nn.GRU(input_size=1, hidden_size=hidden)
        self.fc = nn.Linear(hidden, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


x_train, y_train = make_traces(2400)
x_test, y_test = make_traces(600)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=48, shuffle=True)
test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=48)

net = TraceNet()
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(6):
    net.train()
    epoch_loss = 0.0
    for xb, yb in train_loader:
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        epoch_loss += loss.item()
    net.eval()
    with torch.no_grad():
        correct = sum((net(xb).argmax(1) == yb).sum().item() for xb, yb in test_loader)
    print(f"epoch {epoch + 1} | loss {epoch_loss / len(train_loader):.4f} | test acc {correct / len(y_test):.3f}")
