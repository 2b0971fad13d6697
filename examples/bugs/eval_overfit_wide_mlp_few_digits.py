# EXPECT: overfitting
# ALSO: too-little-data
# A wide MLP trained on 150 of scikit-learn's 8x8 digits, validated on 600 others.
"""Training error reaches zero within a few epochs while validation error stays high:
the model memorises its small training set."""
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets(n_train=150):
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:n_train], perm[n_train:n_train + 600]
    return TensorDataset(X[tr], y[tr]), TensorDataset(X[va], y[va])


def dldoctor_spec(lr=1e-3, width=512, batch_size=32):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                       nn.Linear(width, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=300),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
