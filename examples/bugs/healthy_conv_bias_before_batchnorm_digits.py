# EXPECT: healthy
# A CNN on scikit-learn's digits whose convolutions keep their default bias although a
# BatchNorm2d follows each one. In training mode batch norm subtracts each channel's
# batch mean, so a constant per-channel bias cancels and its gradient is zero up to
# float rounding (max |grad| 6e-8 here, against 0.2 for the weights). It tempts
# no-gradient-flow; the bias is only redundant (bias=False would save 24 values), and
# no path to the loss is broken.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(width=8):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 16, 10),
    )


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return TensorDataset((X - X.mean()) / X.std(), torch.tensor(y))


def dldoctor_spec(lr=3e-3):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr),
    }
