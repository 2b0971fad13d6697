# EXPECT: underfitting
# A narrow MLP learning labels made by a wider "teacher" network on synthetic data (no label noise).
"""The student has 8 hidden units; the labels come from a 128-unit teacher, so they are
exactly learnable by a larger model. One batch of 64 is easy to memorise, but across
4,000 samples the narrow model stays far above zero training error."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.Generator().manual_seed(123)
    w1, w2 = torch.randn(16, 128, generator=teacher), torch.randn(128, 6, generator=teacher)
    X = torch.randn(n, 16, generator=g)
    y = (torch.tanh(X @ w1) @ w2).argmax(1)
    return TensorDataset(X, y)


def dldoctor_spec(lr=3e-3, hidden=8, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 6)),
        "train_loader": DataLoader(make_data(4000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(1000, 1), batch_size=500),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "irreducible_error": 0.0,
    }
