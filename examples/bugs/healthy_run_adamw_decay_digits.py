# EXPECT: healthy
# STAGES: run, overfit, compare, evaluate
# The look-alike of over-regularisation: AdamW with an explicit weight_decay=0.05 and dropout
# 0.2 on a digits MLP. AdamW decays weights by lr x decay per step (here 2.5e-4), a mild pull
# that a learning model overcomes: the run fits the training data and generalises.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(4))
    train, val = order[:1400], order[1400:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=5e-3, weight_decay=0.05),
    }
