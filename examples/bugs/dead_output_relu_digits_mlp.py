# EXPECT: dead-activations
# A digits MLP whose author put a ReLU after the last Linear as well ("activations after
# every layer"). CrossEntropyLoss drives the wrong classes' logits down into the ReLU, where
# they stick at 0 for every input: those output units get no gradient again, and their
# classes are never predicted (validation accuracy 0.65-0.88 instead of about 0.97).
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model():
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.ReLU())


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(2))
    train, val = order[:1400], order[1400:]
    return {
        "model": make_model,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
