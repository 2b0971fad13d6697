# EXPECT: device-mismatch
# An MLP on scikit-learn's digits with its own step function.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

DEVICE = torch.device("cuda")


def make_model():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    X = (X - X.mean(dim=0)) / (X.std(dim=0) + 1e-6)
    return TensorDataset(X, torch.tensor(y))


def step_forward(model, batch):
    inputs, targets = batch
    inputs, targets = inputs.to(DEVICE), targets.to(DEVICE)
    return model(inputs), targets


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "forward": step_forward,
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]().to(DEVICE)
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](*spec["forward"](model, batch))
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
