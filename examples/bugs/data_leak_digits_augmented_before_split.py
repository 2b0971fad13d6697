# EXPECT: train-val-leakage
"""Digit classifier: 99% validation accuracy, but it does poorly on newly scanned digits.

To get more data we made a lightly noised copy of every scan, and only then split
the enlarged set at random into training and validation.
"""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


def load_data():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X.reshape(-1, 1, 8, 8) / 16.0 - 0.3) / 0.4, dtype=torch.float32)
    y = torch.tensor(y)
    g = torch.Generator().manual_seed(0)
    noisy = X + 0.01 * torch.randn(X.shape, generator=g)
    full = TensorDataset(torch.cat([X, noisy]), torch.cat([y, y]))
    return random_split(full, [0.8, 0.2], generator=torch.Generator().manual_seed(1))


def make_model(width=16):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def dldoctor_spec(lr=1e-3, width=16, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: make_model(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
