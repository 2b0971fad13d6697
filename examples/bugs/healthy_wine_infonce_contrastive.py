# EXPECT: healthy
# STAGES: run
# CLIP-style two-tower contrastive training on scikit-learn's wine measurements
# (standardised): one MLP tower embeds a wine's 7 "acid/alcohol" measurements, another its
# 6 "colour/phenol" measurements, and each anchor must pick the other half of the same
# wine among 8 candidates (7 halves of other wines, random order) by cosine similarity /
# 0.07 (CLIP's initial temperature), with cross-entropy over the 8 candidates. At init
# the two towers are unrelated, so the cosines are random and the temperature turns them
# into logits of std ~3.3: the loss starts at 6.2, 4 nats above ln(8) = 2.08. That is the
# objective, not the weights: PyTorch's default init reproduces it, and the towers align
# within a few hundred steps.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

TEMPERATURE = 0.07
CANDIDATES = 8
SPLIT = 7  # features of tower A; the rest go to tower B


def tower(inputs, hidden=64, dim=16):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower_a = tower(SPLIT)
        self.tower_b = tower(13 - SPLIT)

    def forward(self, x):  # x: [N, 1 + CANDIDATES, 13]: the anchor wine, then the candidates
        a = F.normalize(self.tower_a(x[:, 0, :SPLIT]), dim=-1)
        b = F.normalize(self.tower_b(x[:, 1:, SPLIT:]), dim=-1)
        return (b * a.unsqueeze(1)).sum(-1) / TEMPERATURE


def make_dataset(n=512, seed=0):
    X, _ = load_wine(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    anchor = torch.randint(0, len(X), (n,), generator=g)
    candidates = torch.randint(0, len(X), (n, CANDIDATES), generator=g)
    target = torch.randint(0, CANDIDATES, (n,), generator=g)
    candidates[torch.arange(n), target] = anchor
    return TensorDataset(torch.cat([X[anchor].unsqueeze(1), X[candidates]], dim=1), target)


def dldoctor_spec(lr=1e-3):
    return {
        "model": TwoTower,
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_dataset(128, seed=1), batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
