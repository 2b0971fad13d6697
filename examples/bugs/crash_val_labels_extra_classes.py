# EXPECT: label-out-of-range
"""Digit classifier for a pilot that reads only the digits 0-7.

The training split is filtered to the eight digits the pilot covers and the head is
sized for them, but the validation split was cut from the full data set before the
filter: its 8s and 9s are classes the model cannot output.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PILOT_DIGITS = 8


def load_data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    keep = y_train < PILOT_DIGITS
    train = TensorDataset(torch.from_numpy(X_train[keep]), torch.from_numpy(y_train[keep]))
    val = TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val))
    return train, val


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, PILOT_DIGITS)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
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
