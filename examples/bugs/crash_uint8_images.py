# EXPECT: dtype-mismatch
# A small CNN on 28x28 grayscale images stored as raw 8-bit pixels, as read from disk.
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def load_images(n=512):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=n)
    pixels = rng.integers(0, 128, size=(n, 1, 28, 28)) + labels[:, None, None, None] * 12
    return pixels.astype(np.uint8), labels


def dldoctor_spec(lr=1e-3, batch_size=64):
    pixels, labels = load_images()
    dataset = TensorDataset(torch.from_numpy(pixels), torch.from_numpy(labels))
    return {
        "model": make_model,
        "train_loader": DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for images, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
