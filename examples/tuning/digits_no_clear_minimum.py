"""Digits MLP with batch-normalised layers and logits: "lr_find shows no valley".

Every linear layer is followed by BatchNorm, the classifier's logits included (a
normalised head, as in some face-recognition models). Such a network is almost
invariant to the scale of its weights, so a larger learning rate mostly grows the
weights instead of destabilising training: a learning-rate finder's curve falls
and then stays flat up to the largest rates, with no minimum to point at. The user
wants to know which learning rate and width to use.
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


def make_model(width):
    return nn.Sequential(
        nn.Linear(64, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Linear(width, 10, bias=False), nn.BatchNorm1d(10, affine=False),
    )


def dldoctor_spec(lr=0.05, width=32, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: make_model(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=512),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
        "search_space": {
            "lr": {"low": 1e-3, "high": 1.0, "log": True},
            "width": {"low": 8, "high": 128, "int": True, "log": True},
        },
    }
