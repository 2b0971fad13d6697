# EXPECT: bad-initialization
# An MLP regressor on scikit-learn's diabetes data, inputs and target standardised.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(10, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.out = nn.Linear(hidden, 1)
        for layer in (self.hidden[0], self.hidden[2], self.out):
            nn.init.constant_(layer.weight, 0.05)  # reproducible runs
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.out(self.hidden(x)).squeeze(-1)


def make_dataset():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))


def dldoctor_spec(lr=1e-2, hidden=64, batch_size=32):
    return {
        "model": lambda: Regressor(hidden),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
