# EXPECT: loss-input-probabilities
# Breast-cancer screening MLP whose forward ends in the logistic function written out by
# hand, 1 / (1 + exp(-z)), then trained with BCEWithLogitsLoss, which applies the sigmoid
# again: no Sigmoid module or torch.sigmoid call is there to recognise, only outputs that
# stay inside (0, 1) however the model trains.
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Screener(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.score = nn.Linear(hidden, 1)

    def forward(self, x):
        z = self.score(self.body(x))
        return 1.0 / (1.0 + torch.exp(-z))  # "probability of malignancy"


def datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=1, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    as_ds = lambda X, y: TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),  # noqa: E731
                                       torch.tensor(y, dtype=torch.float32).unsqueeze(1))
    return as_ds(X_tr, y_tr), as_ds(X_va, y_va)


def dldoctor_spec():
    train, val = datasets()
    return {
        "model": Screener,
        "train_loader": DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
