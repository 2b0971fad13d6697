"""Digits classifier that "trains, but badly": Adam at lr=1e-5 and 4 hidden units.

A user's first MLP on scikit-learn's 8x8 digits. The learning rate was copied from a
fine-tuning recipe (100x smaller than Adam's usual 1e-3) and the hidden layer was
shrunk while debugging and never widened again, so validation accuracy after a
few epochs is poor. The spec declares a search space for `dldoctor tune`.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-6
    def to_ds(X, y):
        return TensorDataset(torch.from_numpy((X - mean) / std), torch.from_numpy(y).long())
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-5, width=4, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=512),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "search_space": {
            "lr": {"low": 1e-5, "high": 1e-1, "log": True},
            "width": [4, 8, 16, 32, 64, 128],
        },
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            spec["loss_fn"](model(x), y).backward()
            optimizer.step()
        x, y = next(iter(spec["val_loader"]))
        print(f"epoch {epoch + 1}: val_accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
