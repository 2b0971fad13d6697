# EXPECT: healthy
# Event counts (Poisson, rate depending on 6 features) modelled by an MLP whose output goes
# through Softplus, so that the predicted rate is positive, trained with PoissonNLLLoss on the
# rate itself (log_input=False). Many counts are 0, yet no output is clipped: Softplus is
# positive everywhere and keeps passing gradient.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    rate = torch.exp(0.6 * x[:, 0] - 0.4 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3] - 0.2)
    return TensorDataset(x, torch.poisson(rate, generator=g).unsqueeze(1))


def make_model():
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1), nn.Softplus())


def dldoctor_spec():
    return {
        "model": make_model,
        "train_loader": DataLoader(make_data(2048, 0), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(512, 1), batch_size=256),
        "loss_fn": nn.PoissonNLLLoss(log_input=False),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
