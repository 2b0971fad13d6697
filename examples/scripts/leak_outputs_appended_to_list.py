# EXPECT: memory-leak
"""A GRU that classifies synthetic sequences by their dominant frequency.

To report the training accuracy of each epoch, the loop appends the raw `logits`
of every batch to a list and concatenates them at the end. Those logits still carry
their autograd graph, so every batch's graph stays referenced until the epoch ends:
the number of live graph-carrying tensors grows by one per step. Appending
`logits.detach()` (or the argmax) would keep only the numbers.
"""
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_CLASSES, SEQ_LEN = 4, 32


def synthetic_waves(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, N_CLASSES, (n,), generator=g)
    freqs = 0.15 + 0.25 * labels.float()
    phase = torch.rand(n, generator=g) * 2 * math.pi
    t = torch.arange(SEQ_LEN).float()
    waves = torch.sin(freqs[:, None] * t[None, :] + phase[:, None])
    waves = waves + 0.3 * torch.randn(n, SEQ_LEN, generator=g)
    return waves.unsqueeze(-1), labels


class WaveClassifier(nn.Module):
    def __init__(self, hidden=48):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, N_CLASSES)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc(h[-1])


def train_one_epoch(model, loader, optimizer, criterion):
    model.train()
    all_logits, all_labels = [], []
    for x, y in loader:
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        all_logits.append(logits)
        all_labels.append(y)
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    return criterion(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


torch.manual_seed(0)
x_train, y_train = synthetic_waves(3000, seed=0)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
model = WaveClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(5):
    loss, acc = train_one_epoch(model, train_loader, optimizer, criterion)
    print(f"epoch {epoch + 1}: train loss {loss:.3f}  train acc {acc:.3f}")
