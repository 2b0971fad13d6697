# EXPECT: dead-activations
# STAGES: run, overfit, compare, evaluate
# A wine-quality style regression (sklearn's wine features, target: a centred linear score of
# them plus noise) whose model ends in nn.ReLU "because the score is a rating". The targets
# were centred, so half of them are negative and the ReLU can never produce them: every
# sample with a negative target gets a zero output and, once its pre-activation is negative,
# no gradient.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, _ = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(13, 1, generator=g)
    y = X @ w + 0.3 * torch.randn(len(X), 1, generator=g)
    y = y - y.mean()
    order = torch.randperm(len(X), generator=g)
    train, val = order[:130], order[130:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 1), nn.ReLU()),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=64),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
