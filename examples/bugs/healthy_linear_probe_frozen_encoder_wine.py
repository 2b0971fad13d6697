# EXPECT: healthy
# A linear probe on scikit-learn's wine data: a two-layer encoder (standing in for a
# pretrained one) is frozen, and only a new linear classifier on its 64 features trains,
# with an optimiser over the trainable parameters only. It tempts no-gradient-flow: 5,056
# of the 5,251 parameter values never get a gradient. But the head is what is meant to
# train, and it fits one batch on its own.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Probe(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(13, width), nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.encoder.requires_grad_(False)
        self.classifier = nn.Linear(width, 3)

    def forward(self, x):
        return self.classifier(self.encoder(x))


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y))


def dldoctor_spec(lr=3e-2):
    return {
        "model": Probe,
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=lr),
    }
