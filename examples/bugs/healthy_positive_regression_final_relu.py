# EXPECT: healthy
# Delivery times (always positive: 0.5 to about 6 hours) regressed from 8 route features by an
# MLP whose output goes through a ReLU so that it can never be negative. Every target is above
# 0, so the loss pushes the output up and away from the clip: no output unit dies, and the ReLU
# is a harmless constraint here.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    hours = 0.5 + nn.functional.softplus(1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 1.0)
    return TensorDataset(x, (hours + 0.05 * torch.randn(n, generator=g)).unsqueeze(1))


def make_model():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.ReLU())
    nn.init.constant_(model[2].bias, 1.0)  # start near a typical target, on the ReLU's open side
    return model


def dldoctor_spec():
    return {
        "model": make_model,
        "train_loader": DataLoader(make_data(2048, 0), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(512, 1), batch_size=256),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
