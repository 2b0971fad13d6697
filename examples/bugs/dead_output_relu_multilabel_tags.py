# EXPECT: dead-activations
# A multi-label tagger (12 tags, most of them rare) trained with BCEWithLogitsLoss, with a ReLU
# after the output layer. For a rare tag the loss wants a negative logit for nearly every
# sample; the ReLU stops at 0, the unit goes to 0 for every sample and stops learning, and the
# predicted probability of that tag is stuck at sigmoid(0) = 0.5 for everything.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    w = torch.randn(20, 12, generator=g)
    bias = torch.linspace(-3.0, 1.0, 12)  # from rare tags to common ones
    tags = (x @ w / 4.5 + bias + 0.3 * torch.randn(n, 12, generator=g) > 0).float()
    return TensorDataset(x, tags)


def make_model():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 12), nn.ReLU())


def dldoctor_spec():
    return {
        "model": make_model,
        "train_loader": DataLoader(make_data(2048, 0), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(512, 1), batch_size=256),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
