# EXPECT: healthy
# A siamese regressor on synthetic 2-D points: one shared tower embeds both points of a
# pair, and a linear head reads the element-wise |f(a) - f(b)| to predict the pair's
# Euclidean distance (MSE). The tower's last bias is added to both embeddings and cancels
# in the difference, so its gradient is exactly zero on every batch. It tempts
# no-gradient-flow (a trainable tensor that never gets a gradient): measured, perturbing
# that bias on a copy (noise as large as its values) moves the loss by 0 to 1e-7 of its
# value, i.e. the loss does not depend on it by construction; no path is broken.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class PairDistance(nn.Module):
    def __init__(self, hidden=64, dim=16):
        super().__init__()
        self.tower = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, dim))
        self.head = nn.Linear(dim, 1)

    def forward(self, pairs):
        a, b = self.tower(pairs[:, 0]), self.tower(pairs[:, 1])
        return self.head((a - b).abs()).squeeze(1)


def make_dataset(n=1024):
    g = torch.Generator().manual_seed(0)
    pairs = torch.rand(n, 2, 2, generator=g) * 2 - 1
    distance = (pairs[:, 0] - pairs[:, 1]).norm(dim=1)
    return TensorDataset(pairs, distance)


def dldoctor_spec(lr=3e-3):
    return {
        "model": PairDistance,
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
