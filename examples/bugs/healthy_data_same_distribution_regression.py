# EXPECT: healthy
# STAGES: run, data
"""House-price regression: training and validation rows drawn from the same market, one random split."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


def houses(n=3000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    price = 2.0 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * torch.randn(n, generator=g)
    return TensorDataset(x, price.unsqueeze(1))


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=64):
    train, val = random_split(houses(), [0.8, 0.2], generator=torch.Generator().manual_seed(1))
    return {
        "model": lambda: nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, 1)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.MSELoss(),
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
