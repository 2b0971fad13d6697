# EXPECT: healthy
# STAGES: run, overfit, evaluate
"""A wine classifier whose dataset builds each item on first use and caches it.

Memory grows while the first epoch fills the cache and stays flat afterwards: a
bounded cache (one entry per sample), not a leak.
"""
import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset


class CachedWine(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y
        self.cache = {}

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if i not in self.cache:
            features = torch.from_numpy(np.asarray(self.X[i], dtype=np.float32))
            self.cache[i] = (features, int(self.y[i]))
        return self.cache[i]


def dldoctor_spec(lr=3e-3, batch_size=16):
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 3)),
        "train_loader": DataLoader(CachedWine(X, y), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
