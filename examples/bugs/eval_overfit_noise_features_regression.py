# EXPECT: overfitting
# ALSO: too-little-data
# An MLP regressor on 300 samples with 200 features, of which only 5 carry signal.
"""The network fits the training targets almost exactly through the 195 noise features,
and its validation error is several times its training error."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 200, generator=g)
    w = torch.tensor([1.5, -2.0, 1.0, 0.5, -1.0])
    y = X[:, :5] @ w + 0.3 * torch.randn(n, generator=g)
    return TensorDataset(X, y / 2.0)


class Regressor(nn.Module):
    def __init__(self, width=256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(200, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def dldoctor_spec(lr=1e-3, width=256, batch_size=32):
    return {
        "model": lambda: Regressor(width),
        "train_loader": DataLoader(make_data(300, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(1000, 1), batch_size=500),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
