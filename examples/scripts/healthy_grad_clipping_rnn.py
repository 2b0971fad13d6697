# EXPECT: healthy
"""A vanilla tanh RNN trained with SGD + momentum and gradient-norm clipping, on a
"sum the last ten values" task over 40-step noise sequences.

Tempts `exploding-gradients` / `lr-too-high`: without the clipping this setup blows
up within an epoch, and the raw gradient norm regularly exceeds the clip threshold.
The clipping is done correctly (after backward(), before step()), so every update is
bounded and the loss falls steadily.
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)


def sequences(n):
    x = rng.standard_normal((n, 40, 1)).astype(np.float32)
    y = x[:, -10:, 0].sum(axis=1) / 3.0
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


class TailSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(input_size=1, hidden_size=64, batch_first=True)
        self.fc = nn.Linear(64, 1)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.fc(h[:, -1]).squeeze(1)


train_loader = DataLoader(sequences(2048), batch_size=64, shuffle=True)
val_x, val_y = sequences(512).tensors
model = TailSum()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.MSELoss()

for epoch in range(8):
    model.train()
    losses, clipped = [], 0
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        clipped += int(norm > 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        val = criterion(model(val_x), val_y).item()
    print(f"epoch {epoch}: train {np.mean(losses):.4f}  val {val:.4f}  clipped {clipped}/{len(train_loader)} batches")
