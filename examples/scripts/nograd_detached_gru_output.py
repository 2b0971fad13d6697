# EXPECT: no-gradient-flow
"""A GRU that forecasts the next value of noisy sine-wave sequences.

The prediction is taken as `model(seq).detach().requires_grad_()`: detach() cuts
it off from the GRU, and requires_grad_() only turns it into a new leaf so that
backward() no longer complains. The loss's gradient stops at that leaf, none of the
model's parameters ever get a gradient, and the optimizer never changes them.
"""
import argparse

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_sequences(n, length=24, seed=0):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.5, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.arange(length + 1)[None, :]
    wave = np.sin(freq * t + phase) + 0.05 * rng.standard_normal((n, length + 1))
    x = torch.tensor(wave[:, :-1, None], dtype=torch.float32)
    y = torch.tensor(wave[:, -1], dtype=torch.float32)
    return x, y


class Forecaster(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(h[:, -1]).squeeze(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    x_train, y_train = make_sequences(2048, seed=0)
    x_val, y_val = make_sequences(512, seed=1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    model = Forecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.MSELoss()

    for epoch in range(args.epochs):
        model.train()
        losses = []
        for seq, target in loader:
            optimizer.zero_grad()
            pred = model(seq).detach().requires_grad_()
            loss = criterion(pred, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_mse = criterion(model(x_val), y_val).item()
        print(f"epoch {epoch + 1}/{args.epochs}  train_mse {np.mean(losses):.4f}  val_mse {val_mse:.4f}")


if __name__ == "__main__":
    main()
