# EXPECT: distribution-shift
"""Wine classifier: 100% training accuracy, 0% validation accuracy on the third cultivar.

The CSV is sorted by cultivar, and we took the last 25% of its rows as the validation set.
"""
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y)
    cut = int(0.75 * len(y))
    mean, std = X[:cut].mean(0), X[:cut].std(0)
    X = (X - mean) / std
    return TensorDataset(X[:cut], y[:cut]), TensorDataset(X[cut:], y[cut:])


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=16):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 3)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "num_classes": 3,
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
