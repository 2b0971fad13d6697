# EXPECT: healthy
# A breast-cancer classifier whose output layer starts at the class prior, as detection models
# often do: the bias is the log-odds of the positive rate and the weights are tiny, so every
# initial output (a logit) sits near 0.5, inside (0, 1). It is still a logit: BCEWithLogitsLoss
# is the right loss, and training moves the negatives' outputs below 0 within a few steps.
import math

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=3, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    def ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),
                             torch.tensor(y, dtype=torch.float32).unsqueeze(1))
    return ds(X_tr, y_tr), ds(X_va, y_va), float(y_tr.mean())


def make_model(prior):
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
    nn.init.normal_(model[2].weight, std=1e-2)
    nn.init.constant_(model[2].bias, math.log(prior / (1 - prior)))
    return model


def dldoctor_spec():
    train, val, prior = datasets()
    return {
        "model": lambda: make_model(prior),
        "train_loader": DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
