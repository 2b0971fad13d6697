# EXPECT: healthy
# An MLP that regresses a smooth function of 6 synthetic features; targets kept as a column.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=32):
    return nn.Sequential(
        nn.Linear(6, hidden), nn.Tanh(),
        nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, 1),
    )


def make_datasets(n=1000):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 6, generator=g)
    y = torch.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] - 0.3 * X[:, 3] + 0.05 * torch.randn(n, generator=g)
    y = ((y - y.mean()) / y.std()).unsqueeze(1)
    return TensorDataset(X[:800], y[:800]), TensorDataset(X[800:], y[800:])


def dldoctor_spec(lr=3e-3, hidden=32, batch_size=32):
    train, val = make_datasets()
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=200),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "regression",
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
        print(f"epoch {epoch}: loss {loss.item():.4f}")
