# EXPECT: class-imbalance
"""Fraud detector on card transactions: 99% accuracy from the first epoch, yet it never flags a fraud.

Only about 2% of the transactions are fraudulent, and the loss treats every
transaction alike, so predicting "legit" for everything is already 98% accurate.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

FRAUD_RATE = 0.02


def make_transactions(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    fraud = torch.rand(n, generator=g) < FRAUD_RATE
    x[fraud, :3] += 2.0  # frauds: larger amounts, odd hours, far from home
    return TensorDataset(x, fraud.float())


def make_model(hidden=32):
    return nn.Sequential(nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1), nn.Flatten(0))


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(make_transactions(4000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_transactions(1000, 1), batch_size=256),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
