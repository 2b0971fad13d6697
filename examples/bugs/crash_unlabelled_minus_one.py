# EXPECT: label-out-of-range
# Semi-supervised digits: as in scikit-learn's label-spreading examples, 30% of the
# samples are unlabelled and carry the label -1.
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model():
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def make_dataset(unlabelled_fraction=0.3):
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    y = y.copy()
    y[rng.random(len(y)) < unlabelled_fraction] = -1
    X = (X / 16.0 - 0.3) / 0.4
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "num_classes": 10,
    }


if __name__ == "__main__":
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
