# EXPECT: over-regularization
# STAGES: run, overfit, compare, evaluate
# A digits CNN trained with SGD (momentum 0.9) and weight_decay=0.05, a hundred times the
# usual 5e-4 (a typo'd exponent). One batch still fits, the decay's pull is small against a
# single batch's gradient; across the whole training set the weights are held so small that
# the model stays far above a linear model's error.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(2))
    train, val = order[:1400], order[1400:]
    return {
        "model": lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                       nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.05),
    }
