# EXPECT: lr-too-low
# STAGES: run, overfit, compare, evaluate
# Diabetes progression regression with the targets left in their clinical units (mean 152,
# standard deviation 77) and Adam at its default learning rate of 1e-3. Adam moves each
# weight by about the learning rate per step, so the output needs thousands of steps just to
# climb to the targets' mean: after the short run the model is far worse than predicting the
# mean. Ten times the rate gets most of the way; standardising the targets is the lasting fix.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)  # raw units: 25 to 346
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, val = order[:350], order[350:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
