# EXPECT: loss-input-probabilities
# A probit classifier for "is this wine from cultivar 0?": the head's score goes through the
# normal CDF, 0.5 * (1 + erf(z / sqrt(2))), to give a probability, and that probability is fed
# to BCEWithLogitsLoss, which treats it as a logit. Every output is squeezed into (0, 1), so
# the loss can never be driven much below ln 2 for the negatives.
import math

import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Probit(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(13, 24), nn.Tanh())
        self.score = nn.Linear(24, 1)

    def forward(self, x):
        z = self.score(self.features(x))
        return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


def dldoctor_spec():
    X, y = load_wine(return_X_y=True)
    y = (y == 0).astype("float32")
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    def ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32), torch.tensor(y).view(-1, 1))
    return {
        "model": Probit,
        "train_loader": DataLoader(ds(X_tr, y_tr), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(ds(X_va, y_va), batch_size=64),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    }
