# EXPECT: distribution-shift
"""Machine-failure predictor validated on last month's data performs far worse than in training.

The validation rows were logged after the plant replaced two of the sensors; the new
units read higher (temperature) and noisier (vibration) than the old ones.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def sensor_log(n, seed, new_sensors=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    failure = (x[:, 0] + x[:, 1] - 0.5 * x[:, 4] + 0.5 * torch.randn(n, generator=g)) > 1.0
    if new_sensors:
        x[:, 0] += 1.5  # temperature: the new sensor reads 1.5 standard deviations higher
        x[:, 1] *= 2.5  # vibration: the new sensor is far noisier
    return TensorDataset(x, failure.long())


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        "train_loader": DataLoader(sensor_log(3000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(sensor_log(800, 1, new_sensors=True), batch_size=256),
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
