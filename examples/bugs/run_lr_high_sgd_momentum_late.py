# EXPECT: lr-too-high
# STAGES: run, overfit, compare, evaluate
# Breast-cancer classifier (30 standardised features) trained with SGD, momentum 0.9 and a
# learning rate of 0.5. The first epoch brings the loss down; as the weights grow, the
# effective step grows with them and the loss climbs back and diverges in a later epoch.
# A learning rate ten times lower trains smoothly.
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, val = order[:430], order[430:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                       nn.Linear(64, 2)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=139),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=0.5, momentum=0.9),
    }
