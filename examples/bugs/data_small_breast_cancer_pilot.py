# EXPECT: too-little-data
# ALSO: overfitting
"""Tumour classifier from a pilot study: perfect on the training patients, unstable on new ones.

The pilot collected 60 patients; the network is the one sized for the full study.
"""
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_breast_cancer(return_X_y=True)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    pilot, later = order[:60], order[60:360]
    X = torch.tensor(X, dtype=torch.float32)
    mean, std = X[pilot].mean(0), X[pilot].std(0)
    X = (X - mean) / std
    y = torch.tensor(y, dtype=torch.float32)
    return TensorDataset(X[pilot], y[pilot]), TensorDataset(X[later], y[later])


def make_model(hidden=384):
    return nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1), nn.Flatten(0))


def dldoctor_spec(lr=1e-3, hidden=384, batch_size=16):
    train, val = load_data()
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=100),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(50):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
