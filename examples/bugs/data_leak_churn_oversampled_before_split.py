# EXPECT: train-val-leakage
"""Customer-churn model: validation F1 looked great, production recall is poor.

Churners are rare, so we over-sampled them (repeated each churner's row four times)
on the whole table and only then drew the validation rows from it.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_table(n=3000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    churn = (x[:, :4].sum(1) + 0.8 * torch.randn(n, generator=g)) > 2.2
    repeated = churn.nonzero()[:, 0].repeat(4)
    rows = torch.cat([torch.arange(n), repeated])
    rows = rows[torch.randperm(len(rows), generator=g)]
    return x[rows], churn[rows].float()


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=64):
    x, y = make_table()
    cut = int(0.8 * len(y))
    return {
        "model": lambda: nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Flatten(0)),
        "train_loader": DataLoader(TensorDataset(x[:cut], y[:cut]), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(x[cut:], y[cut:]), batch_size=256),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
