"""A small CNN on scikit-learn's 8x8 digits: the spec of digits_script.py (spec mode).

The same model, optimizer, loss and data as digits_script.py, handed to dldoctor.
"""
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 1, 8, 8).astype("float32") / 16.0
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = X_train.mean(), X_train.std()
    train = TensorDataset(torch.from_numpy((X_train - mean) / std), torch.from_numpy(y_train).long())
    val = TensorDataset(torch.from_numpy((X_val - mean) / std), torch.from_numpy(y_val).long())
    return train, val


def dldoctor_spec():
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": F.cross_entropy,
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
