# EXPECT: healthy
# An eight-layer ReLU MLP on scikit-learn's digits (standardised), He-initialised with zero biases.
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=128, depth=8):
    layers, width = [], 64
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 10))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
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
