# EXPECT: distribution-shift
# A CNN on scikit-learn's 8x8 digits whose validation images come from a scanner that inverts intensities.
"""The validation export inverted the images
(16 - pixel), so the same digits arrive as negatives. Train error is low, validation poor."""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:1400], perm[1400:]
    norm = lambda t: (t / 16.0 - 0.3) / 0.4  # noqa: E731
    return TensorDataset(norm(X[tr]), y[tr]), TensorDataset(norm(16.0 - X[va]), y[va])


def dldoctor_spec(lr=3e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                       nn.Linear(16 * 64, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=397),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
