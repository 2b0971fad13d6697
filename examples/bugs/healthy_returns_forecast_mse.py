# EXPECT: healthy
# STAGES: run
# A single-output MLP that forecasts tomorrow's return of a synthetic price series (an
# AR(1) process of daily log-returns with a 1% daily volatility) from the last 20 returns,
# standardised, with an MSE loss on the raw return. The targets are small (rms 0.01), so
# a default-initialised head, whose outputs have rms ~0.36, starts at ~1000x the loss of
# predicting 0. That is what PyTorch's default init gives on targets of this size
# (re-initialising with the defaults gives the same loss): the output layer reaches the
# targets' scale within the first Adam steps.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

LAGS = 20
VOLATILITY = 0.01


def make_series(n=2400, phi=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    shocks = VOLATILITY * torch.randn(n, generator=g)
    returns = torch.zeros(n)
    for t in range(1, n):
        returns[t] = phi * returns[t - 1] + shocks[t]
    return returns


def make_datasets():
    r = make_series()
    windows = r.unfold(0, LAGS + 1, 1)
    X, y = windows[:, :LAGS], windows[:, LAGS:]
    split = int(0.8 * len(X))
    mean, std = X[:split].mean(), X[:split].std()
    X = (X - mean) / std
    return TensorDataset(X[:split], y[:split]), TensorDataset(X[split:], y[split:])


def dldoctor_spec(lr=1e-3, hidden=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(LAGS, hidden), nn.ReLU(), nn.Linear(hidden, 1)),
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
