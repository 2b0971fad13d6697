"""Digits MLP whose defaults are already good: does tuning really help?

A two-layer MLP with Adam at lr=5e-3, 128 hidden units and a little dropout reaches
about 97% validation accuracy on scikit-learn's 8x8 digits in a few epochs. The user
asks dldoctor to tune it anyway; any "improvement" must be told apart from the
noise of a 450-sample validation set.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-6
    def to_ds(X, y):
        return TensorDataset(torch.from_numpy((X - mean) / std), torch.from_numpy(y).long())
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=5e-3, width=128, dropout=0.1, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=512),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "search_space": {
            "lr": {"low": 1e-4, "high": 3e-2, "log": True},
            "width": [32, 64, 128, 256],
            "dropout": {"low": 0.0, "high": 0.5},
        },
    }
