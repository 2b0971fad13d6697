# EXPECT: healthy
# STAGES: run
# An MLP on scikit-learn's 8x8 digits stored as raw 8-bit grey levels (0-255), where the
# model flattens each image and normalises it with a LayerNorm without affine
# parameters (per-image standardisation, nothing to train) before its first Linear
# layer. The first trainable layer sees rows of mean 0 and std 1 (rms ~1); only the
# parameter-free Flatten sees the raw 0-255 integers.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=64):
    return nn.Sequential(
        nn.Flatten(), nn.LayerNorm(64, elementwise_affine=False),
        nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    grey = torch.tensor((X * 255 / 16).round(), dtype=torch.float32).view(-1, 1, 8, 8)
    X_tr, X_va, y_tr, y_va = train_test_split(grey, torch.tensor(y), test_size=0.2, random_state=0)
    return TensorDataset(X_tr, y_tr), TensorDataset(X_va, y_va)


def dldoctor_spec(lr=1e-3, hidden=64):
    train, val = make_datasets()
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
