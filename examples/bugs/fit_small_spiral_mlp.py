# EXPECT: model-too-small
# A small MLP on a synthetic 2-D three-arm spiral (3 classes), trained with Adam.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=2):
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def make_spiral(n_per_class=300, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for k in range(3):
        r = torch.linspace(0.05, 1.0, n_per_class)
        theta = 4.0 * r + 2 * math.pi * k / 3 + noise * torch.randn(n_per_class, generator=g)
        xs.append(torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1))
        ys.append(torch.full((n_per_class,), k))
    X, y = torch.cat(xs), torch.cat(ys)
    return TensorDataset((X - X.mean(0)) / X.std(0), y)


def dldoctor_spec(lr=1e-2, hidden=2, batch_size=64):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(make_spiral(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_spiral(seed=1), batch_size=300),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(50):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    x, y = next(iter(spec["val_loader"]))
    with torch.no_grad():
        print(f"loss {loss.item():.4f}  val_accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
