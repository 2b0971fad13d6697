# EXPECT: labels-corrupted
# An MLP on scikit-learn's breast-cancer data with a stratified hold-out split, features standardised.
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=64):
    return nn.Sequential(
        nn.Linear(30, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 2),
    )


def make_datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_val = train_test_split(X, test_size=0.2, random_state=42)
    y_train, y_val = train_test_split(y, test_size=0.2, random_state=42, stratify=y)
    scaler = StandardScaler().fit(X_train)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32), torch.tensor(y))
    return to_ds(X_train, y_train), to_ds(X_val, y_val)


def dldoctor_spec(lr=1e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.RMSprop(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    x, y = next(iter(spec["val_loader"]))
    print(f"loss {loss.item():.4f}  val accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
