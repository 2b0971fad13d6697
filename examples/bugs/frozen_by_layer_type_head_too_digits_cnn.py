# EXPECT: no-gradient-flow
# A small CNN with batch norm on scikit-learn's digits, adapted to a new domain by
# training only the batch-norm layers: the freezing loop turns off every Conv2d and
# Linear, and the new classifier is a Linear too, so it stays at its random initial
# weights. Only 64 of 12,794 parameter values (0.5%) train. Measured: the single batch
# does not fit as given (loss 2.32 -> 1.73 in 200 steps), while the same fit with every
# parameter trainable (fresh copy, same seed, same 200 steps) converges by step 5.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(width=16):
    model = nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * 64, 10),
    )
    for module in model.modules():  # keep the "pretrained" filters, adapt the normalisation
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.requires_grad_(False)
    return model


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return TensorDataset(X, torch.tensor(y))


def dldoctor_spec(lr=1e-2):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=lr),
    }
