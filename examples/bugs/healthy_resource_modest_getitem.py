# EXPECT: healthy
# STAGES: run, overfit, evaluate
"""A digits CNN whose dataset normalises and randomly shifts each image in __getitem__.

The per-item work is a few tensor operations (tens of microseconds), far less than the
training step: the loader is not what limits this run.
"""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset


class ShiftedDigits(Dataset):
    def __init__(self, images, labels):
        self.images = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        self.labels = torch.tensor(labels, dtype=torch.long)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        shift = int(torch.randint(-1, 2, ()))
        x = torch.roll(self.images[i], shifts=shift, dims=2)
        return (x - 0.3) / 0.35, self.labels[i]


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def dldoctor_spec(lr=2e-3, batch_size=64):
    X, y = load_digits(return_X_y=True)
    return {
        "model": make_model,
        "train_loader": DataLoader(ShiftedDigits(X[:640], y[:640]), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
        "num_classes": 10,
    }
