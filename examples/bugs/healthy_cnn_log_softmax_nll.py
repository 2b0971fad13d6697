# EXPECT: healthy
# A small CNN on scikit-learn's 8x8 digits whose last layer returns log-probabilities.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(channels=16, num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * 2 * 2, 64), nn.ReLU(),
        nn.Linear(64, num_classes),
        nn.LogSoftmax(dim=1),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0 - 0.5) / 0.5
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y))
    return to_ds(X_train, y_train), to_ds(X_val, y_val)


def dldoctor_spec(lr=1e-3, channels=16, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: make_model(channels),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.NLLLoss(),
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
