# EXPECT: labels-corrupted
# A small CNN on scikit-learn's 8x8 digits as 1-channel images, trained with SGD and momentum.
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
        )
        self.head = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def make_datasets(n_val=297):
    digits = load_digits()
    images = digits.images.astype(np.float32)
    labels = digits.target
    np.random.seed(0)
    np.random.shuffle(images)
    images = (images - images.mean()) / images.std()
    X = torch.tensor(images).unsqueeze(1)
    y = torch.tensor(labels)
    return TensorDataset(X[n_val:], y[n_val:]), TensorDataset(X[:n_val], y[:n_val])


def dldoctor_spec(lr=0.02, batch_size=64):
    train, val = make_datasets()
    return {
        "model": DigitsCNN,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=297),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for images, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(images), labels)
            loss.backward()
            optimizer.step()
        images, labels = next(iter(spec["val_loader"]))
        with torch.no_grad():
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {(model(images).argmax(1) == labels).float().mean():.3f}")
