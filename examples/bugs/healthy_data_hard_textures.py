# EXPECT: healthy
# STAGES: run, data
"""Texture classifier: four stripe frequencies at random angles and phases, clean labels.

A linear model on the pixels cannot separate these classes; a small CNN can.
"""
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def textures(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    grid = torch.arange(size, dtype=torch.float32)
    angle = torch.rand(n, generator=g) * math.pi
    phase = torch.rand(n, generator=g) * 2 * math.pi
    freq = (labels.float() + 1) * 2 * math.pi / size
    along = torch.cos(angle)[:, None, None] * grid[None, :, None] + torch.sin(angle)[:, None, None] * grid[None, None, :]
    images = torch.sin(freq[:, None, None] * along + phase[:, None, None])
    images = images + 0.5 * torch.randn(images.shape, generator=g)
    return TensorDataset(images.unsqueeze(1), labels)


def make_model(width=16):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(2 * width, 4),
    )


def dldoctor_spec(lr=3e-3, width=16, batch_size=64):
    return {
        "model": lambda: make_model(width),
        "train_loader": DataLoader(textures(2000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(textures(500, 1), batch_size=256),
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
