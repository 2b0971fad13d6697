# EXPECT: healthy
# STAGES: run, overfit, compare, evaluate
# The look-alike of a bounded output on a regression: a sigmoid after the last layer, but the
# targets (the diabetes progression score) were min-max scaled into [0, 1] first, so every
# target is within the sigmoid's range. The model trains normally. (About half of this data
# set's variance is not predictable from its 10 features: linear models explain R^2 ~ 0.5,
# so the spec gives that floor as its irreducible error.)
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    y = (y - y.min()) / (y.max() - y.min())
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))
    train, val = order[:340], order[340:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid()),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
        "irreducible_error": 0.45,
    }
