# EXPECT: healthy
"""Next-value prediction on a long synthetic signal with truncated backpropagation
through time: 16 parallel streams, a GRU fed 25-step chunks, the hidden state carried
from chunk to chunk.

Tempts `no-gradient-flow` (the hidden state is .detach()-ed before every chunk) and
`memory-leak` (a tensor is carried across steps). Detaching the carried state is what
truncates backpropagation at the chunk boundary; without it the graph would grow
across the whole epoch. Every parameter still gets a gradient from the current chunk.
"""
import math

import torch
from torch import nn

torch.manual_seed(0)
STREAMS, CHUNK, LENGTH = 16, 25, 1000

t = torch.arange(STREAMS * LENGTH + 1, dtype=torch.float32)
signal = torch.sin(0.07 * t) + 0.5 * torch.sin(0.31 * t + 1.0) + 0.05 * torch.randn(len(t))
inputs = signal[:-1].view(STREAMS, LENGTH, 1)
targets = signal[1:].view(STREAMS, LENGTH, 1)


class StreamModel(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, 1)

    def forward(self, x, h=None):
        out, h = self.gru(x, h)
        return self.proj(out), h


model = StreamModel()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
criterion = nn.MSELoss()

for epoch in range(6):
    hidden = None
    total, chunks = 0.0, 0
    for start in range(0, LENGTH, CHUNK):
        x = inputs[:, start:start + CHUNK]
        y = targets[:, start:start + CHUNK]
        if hidden is not None:
            hidden = hidden.detach()
        optimizer.zero_grad()
        pred, hidden = model(x, hidden)
        loss = criterion(pred, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += loss.item()
        chunks += 1
    print(f"epoch {epoch + 1}: mean chunk mse {total / chunks:.5f}  (signal variance {signal.var():.3f}, "
          f"rmse/std {math.sqrt(total / chunks) / signal.std():.3f})")
