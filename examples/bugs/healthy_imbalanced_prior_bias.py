# EXPECT: healthy
# A binary classifier for a rare positive class (about 20%), its output bias set to the log-odds of the class prior.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

POSITIVE_RATE = 0.2


def make_model(hidden=32):
    model = nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 1), nn.Flatten(0))
    nn.init.constant_(model[4].bias, math.log(POSITIVE_RATE / (1 - POSITIVE_RATE)))
    return model


def make_dataset(n=2000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    logit = x[:, :3].sum(1) - 1.6
    y = (torch.rand(n, generator=g) < torch.sigmoid(2 * logit)).float()
    return TensorDataset(x, y)


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
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
