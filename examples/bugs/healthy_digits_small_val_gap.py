# EXPECT: healthy
# STAGES: run, overfit, evaluate
# A one-hidden-layer MLP on 300 of scikit-learn's 8x8 digits, validated on a stratified 60
# others (a small validation set, as in a first experiment). After the short run its
# training error is 0.040 and its validation error 0.133 (8 of 60): a gap of 0.093. With
# 60 validation samples that gap has a standard error of 0.046 (Agresti-Caffo): it is 2.0
# standard errors, and the true gap could be as small as 0. Across 16 other splits of the
# same data the same model's gap ranged from -0.04 to +0.09. An ordinary gap for this
# validation set's size, not over-fitting.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, train_size=300, test_size=60, random_state=11, stratify=y)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=3e-3, hidden=128):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)),
        "train_loader": DataLoader(train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=60),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
