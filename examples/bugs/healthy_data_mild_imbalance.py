# EXPECT: healthy
# STAGES: run, data
"""Loan-default classifier on a 60/40 split of repaid and defaulted loans: a mild, harmless imbalance."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def loans(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    default = (x[:, 0] - 0.5 * x[:, 2] + 0.1 * torch.randn(n, generator=g)) > 0.3
    return TensorDataset(x, default.long())


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        "train_loader": DataLoader(loans(2000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(loans(500, 1), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
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
