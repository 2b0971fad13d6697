# EXPECT: healthy
# STAGES: run, data
"""Digit classifier with train, validation and test splits: many digits look alike, none is a copy."""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 1, 8, 8).astype("float32") / 16.0 - 0.3) / 0.4
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
    as_set = lambda X, y: TensorDataset(torch.from_numpy(X), torch.from_numpy(y))  # noqa: E731
    return as_set(X_train, y_train), as_set(X_val, y_val), as_set(X_test, y_test)


def make_model(width=16):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def dldoctor_spec(lr=1e-3, width=16, batch_size=64):
    train, val, test = load_data()
    return {
        "model": lambda: make_model(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "test_loader": DataLoader(test, batch_size=256),
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
