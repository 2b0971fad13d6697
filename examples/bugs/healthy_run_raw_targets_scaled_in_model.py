# EXPECT: healthy
# STAGES: run, overfit, compare, evaluate
# The look-alike of a learning rate too small for the target's scale: the diabetes targets stay
# in their clinical units (mean 152), but the model predicts in standard units and maps them
# back with a fixed affine layer (the training set's mean and standard deviation, registered
# as buffers), so Adam's default 1e-3 is the right size for its parameters.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ScaledRegressor(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x):
        return self.net(x) * self.std + self.mean


def dldoctor_spec():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, val = order[:350], order[350:]
    mean, std = y[train].mean(), y[train].std()
    return {
        "model": lambda: ScaledRegressor(mean, std),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
