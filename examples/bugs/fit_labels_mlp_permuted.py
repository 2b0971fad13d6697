# EXPECT: labels-corrupted
# An MLP on scikit-learn's 8x8 digits; the data are shuffled once up front, then split.
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=128):
    return nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def make_datasets(n_val=300):
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = X[rng.permutation(len(X))]
    y = y[rng.permutation(len(y))]
    mean, std = X[n_val:].mean(0), X[n_val:].std(0) + 1e-6
    X = (X - mean) / std
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    return to_ds(X[n_val:], y[n_val:]), to_ds(X[:n_val], y[:n_val])


def dldoctor_spec(lr=1e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=300),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        x, y = next(iter(spec["val_loader"]))
        with torch.no_grad():
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
