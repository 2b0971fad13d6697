# EXPECT: healthy
"""A GRU that predicts the sum of a sequence of noisy steps, with linear LR warm-up.

Tempts `lr-too-low` / a scheduler-stepped-per-batch alarm: the LR starts at 1/50 of
its base value and a LambdaLR is stepped after every batch. That is a warm-up, meant
to be per batch: the LR climbs to its full value over the first 50 steps and then
decays slowly (inverse square root), never collapsing.
"""
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, length=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(n, length, 1, generator=g) * 0.5
    target = steps.sum(dim=(1, 2)) / length ** 0.5
    return TensorDataset(steps, target)


class SumGRU(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):
        _, h = self.gru(x)
        return self.readout(h[-1]).squeeze(-1)


def warmup_then_rsqrt(warmup):
    def factor(step):
        step += 1
        return step / warmup if step < warmup else (warmup / step) ** 0.5
    return factor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader = DataLoader(make_data(2000), batch_size=50, shuffle=True)
    val_x, val_y = make_data(500, seed=1).tensors
    model = SumGRU()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_rsqrt(args.warmup))
    criterion = nn.MSELoss()

    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            val_mse = criterion(model(val_x), val_y).item()
        lr = scheduler.get_last_lr()[0]
        print(f"epoch {epoch + 1}: lr {lr:.5f}  val mse {val_mse:.4f}  (target var {val_y.var():.3f})")


if __name__ == "__main__":
    main()
