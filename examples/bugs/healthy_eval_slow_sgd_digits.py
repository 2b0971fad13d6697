# EXPECT: healthy
# STAGES: run, overfit, compare, data, evaluate
# An MLP on scikit-learn's 8x8 digits with plain SGD at a modest learning rate: correct, just not finished in the budget.
"""Validation error is still falling steadily when the short budget ends. This is a model
that needs more epochs, not an under-fitting one: no warning may be raised."""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:1400], perm[1400:]
    return TensorDataset(X[tr], y[tr]), TensorDataset(X[va], y[va])


def dldoctor_spec(lr=0.02, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=397),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.5),
    }
