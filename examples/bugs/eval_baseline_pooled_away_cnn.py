# EXPECT: worse-than-baseline
# A CNN on scikit-learn's 8x8 digits whose first block max-pools the whole image to one value per channel.
"""MaxPool2d(8) right after the first convolution keeps only each channel's maximum, so
where a stroke is disappears. The network still memorises a batch, but on held-out
digits it does worse than a linear model on the raw pixels."""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    X = (X - 0.3) / 0.4
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:1400], perm[1400:]
    return TensorDataset(X[tr], y[tr]), TensorDataset(X[va], y[va])


def make_model(channels=16):
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(8), nn.Flatten(),
                         nn.Linear(channels, 64), nn.ReLU(), nn.Linear(64, 10))


def dldoctor_spec(lr=3e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=397),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
