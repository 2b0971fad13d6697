# EXPECT: distribution-shift
# ALSO: overfitting
"""Digit classifier: training loss is low, but validation accuracy is barely above chance.

The training images are standardised in the data-preparation script; the validation
images come from a separate export that skipped that step (raw 0-16 pixel values).
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 1, 8, 8).astype("float32")
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    X_train = (X_train - X_train.mean()) / X_train.std()
    train = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train))
    val = TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val))
    return train, val


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
