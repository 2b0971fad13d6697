# EXPECT: dead-activations
# STAGES: run, overfit, compare, evaluate
# A regression MLP for the diabetes data set that ends in nn.Sigmoid ("outputs should be
# bounded"), while the targets were standardised to mean 0 and unit variance. About three
# quarters of the targets lie outside (0, 1): the sigmoid saturates trying to reach them, and
# the model ends worse than a linear model. Without the sigmoid the same run fits.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 1)
        self.bound = nn.Sigmoid()

    def forward(self, x):
        return self.bound(self.head(self.body(x)))


def dldoctor_spec():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    y = (y - y.mean()) / y.std()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))
    train, val = order[:340], order[340:]
    return {
        "model": Regressor,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
