# EXPECT: worse-than-baseline
# An MLP on scikit-learn's wine data whose forward pass keeps only the first 2 of 13 features.
"""A leftover debugging slice (`x[:, :2]`) in forward(): the model trains and memorises a
batch, but a linear model on all 13 features beats it on validation data."""
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WineNet(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3))

    def forward(self, x):
        return self.net(x[:, :2])


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:120], perm[120:]
    return TensorDataset(X[tr], y[tr]), TensorDataset(X[va], y[va])


def dldoctor_spec(lr=3e-3, batch_size=16):
    train, val = make_datasets()
    return {
        "model": WineNet,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
