# EXPECT: healthy
# A CNN on scikit-learn's 8x8 digits with grey levels scaled to [0, 1], as transforms.ToTensor() leaves them.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, num_classes),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    grey = (X * 255 / 16).round()
    images = torch.tensor(grey, dtype=torch.float32).view(-1, 1, 8, 8) / 255.0
    X_tr, X_va, y_tr, y_va = train_test_split(images, torch.tensor(y), test_size=0.2, random_state=0)
    return TensorDataset(X_tr, y_tr), TensorDataset(X_va, y_va)


def dldoctor_spec(lr=1e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(15):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    x, y = next(iter(spec["val_loader"]))
    print(f"val accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
