# EXPECT: healthy
# An MLP on scikit-learn's raw wine measurements whose first layer is a batch normalisation.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=32):
    return nn.Sequential(
        nn.BatchNorm1d(13),
        nn.Linear(13, hidden), nn.ReLU(),
        nn.Linear(hidden, 3),
    )


def make_dataset():
    X, y = load_wine(return_X_y=True)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))


def dldoctor_spec(lr=1e-2, hidden=32, batch_size=32):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0), drop_last=True),
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
