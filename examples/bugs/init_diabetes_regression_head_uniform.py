# EXPECT: bad-initialization
# A single-output MLP regressor for scikit-learn's diabetes progression score (inputs and
# target standardised, MSE). The author wants "small random weights" in the output layer
# and writes nn.init.uniform_(self.out.weight), whose default range is [0, 1): every
# weight is positive, so the 128 non-negative ReLU features add up and every initial
# output is ~+6.7 against targets of rms 1. The loss at init is ~40x that of
# predicting 0, and re-initialising the same model with PyTorch's defaults brings it
# back to ~1x: the initialisation is the cause.
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, 1)
        nn.init.uniform_(self.out.weight)  # small random weights
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        return self.out(self.body(x))


def make_datasets():
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0)
    mx, sx, my, sy = X_tr.mean(0), X_tr.std(0), y_tr.mean(), y_tr.std()
    def to_ds(X, y):
        return TensorDataset(torch.tensor((X - mx) / sx, dtype=torch.float32),
                             torch.tensor((y - my) / sy, dtype=torch.float32).unsqueeze(1))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-3):
    train, val = make_datasets()
    return {
        "model": Regressor,
        "train_loader": DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
