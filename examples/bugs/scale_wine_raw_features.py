# EXPECT: input-not-normalized
# An MLP that classifies scikit-learn's wine samples from their 13 chemical measurements.
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=64):
    return nn.Sequential(
        nn.Linear(13, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 3),
    )


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_train, y_train), to_ds(X_val, y_val)


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=32):
    train, val = make_datasets()
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(100):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    x, y = next(iter(spec["val_loader"]))
    print(f"val accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
