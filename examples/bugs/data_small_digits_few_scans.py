# EXPECT: too-little-data
# ALSO: overfitting
"""Digit classifier: training accuracy 100% within a few epochs, validation stuck near 70%.

We only had time to scan five examples of each digit for training, and the
network is the wide one from our production model.
"""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X.reshape(-1, 1, 8, 8) / 16.0 - 0.3) / 0.4, dtype=torch.float32)
    y = torch.tensor(y)
    train_rows = torch.cat([(y == d).nonzero()[:5, 0] for d in range(10)])
    val_rows = torch.arange(len(y))[1000:1400]
    return TensorDataset(X[train_rows], y[train_rows]), TensorDataset(X[val_rows], y[val_rows])


def make_model(width=64):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * 8 * 8, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def dldoctor_spec(lr=1e-3, width=64, batch_size=16):
    train, val = load_data()
    return {
        "model": lambda: make_model(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=200),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
