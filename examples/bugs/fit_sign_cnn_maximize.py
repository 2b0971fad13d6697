# EXPECT: loss-sign-flipped
# A small CNN classifier on 16x16 synthetic grayscale images, SGD with Nesterov momentum.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

OPTIMIZER_KWARGS = dict(momentum=0.9, nesterov=True, maximize=True)


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def make_dataset(n=1024):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 1, 16, 16, generator=g)
    templates = torch.randn(10, 16 * 16, generator=g)
    labels = (images.flatten(1) @ templates.T).argmax(dim=1)
    return TensorDataset(images, labels)


def dldoctor_spec(lr=0.01, batch_size=64):
    loader = DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    return {
        "model": make_model,
        "train_loader": loader,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, **OPTIMIZER_KWARGS),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
