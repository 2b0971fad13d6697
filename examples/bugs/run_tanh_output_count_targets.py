# EXPECT: dead-activations
# STAGES: run, overfit, compare, evaluate
# Predicting a count (0 to about 12 events, synthetic Poisson data driven by 6 features) with a
# network whose last layer is followed by nn.Tanh, copied from a model whose targets were
# scaled into [-1, 1]. Every count above 1 is out of reach: the tanh sits at +1 for most of the
# data, its gradient vanishes there, and the fit stalls far above a linear model.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    rate = torch.exp(0.9 + 0.5 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3])
    return TensorDataset(X, torch.poisson(rate, generator=g).unsqueeze(1))


def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(6, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(),
                                       nn.Linear(48, 1), nn.Tanh()),
        "train_loader": DataLoader(make_data(1500, 0), batch_size=50, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(500, 1), batch_size=250),
        "loss_fn": nn.SmoothL1Loss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
