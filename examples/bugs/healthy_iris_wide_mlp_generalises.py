# EXPECT: healthy
# STAGES: run, data
# An over-sized MLP (4 -> 512 -> 512 -> 3, 266k parameters) on scikit-learn's iris flowers:
# 105 training samples (standardised) and 45 validation ones, about 2500 parameters per
# training sample. The rule of thumb calls that too little data for the model; the short
# training run measures that the model fits its training flowers and classifies the
# validation ones about as well (a gap within the noise of 45 samples). Iris is easy: the
# size of the network does not hurt here, and the warning would send the user after
# data they do not need.
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_iris(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    mean, std = X_tr.mean(0), X_tr.std(0)
    def to_ds(X, y):
        return TensorDataset(torch.tensor((X - mean) / std, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=3e-3, hidden=512):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, 3)),
        "train_loader": DataLoader(train, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
