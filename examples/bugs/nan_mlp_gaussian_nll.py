# EXPECT: numerical-instability
# An MLP on scikit-learn's diabetes data that predicts a mean and a variance, trained with Adam.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MeanVarianceNet(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, 1)
        self.var = nn.Linear(hidden, 1)

    def forward(self, x):
        h = self.body(x)
        return torch.cat([self.mean(h), self.var(h)], dim=1)


def gaussian_nll(output, target):
    mean, var = output[:, 0], output[:, 1]
    return (0.5 * torch.log(var) + (target - mean) ** 2 / (2 * var)).mean()


def make_dataset():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32)
    return TensorDataset(X, (y - y.mean()) / y.std())


def dldoctor_spec(lr=1e-3, batch_size=32):
    return {
        "model": MeanVarianceNet,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": gaussian_nll,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "regression",
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
