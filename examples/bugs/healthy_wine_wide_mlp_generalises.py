# EXPECT: healthy
# STAGES: run, data
# A wide MLP (two hidden layers of 512 units, 270k parameters) on scikit-learn's wine
# measurements (133 training samples, standardised; 45 held out): about 2000 parameters
# per training sample, twice what models known to train well from scratch use, so the
# parameter rule of thumb says it can memorise its training set. Measured, it does not
# need to: the three cultivars are nearly linearly separable, and after dldoctor's short
# training run the model fits its training data with a validation error within the noise
# of 45 samples of it. The rule yields to the measurement.
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=1, stratify=y)
    mean, std = X_tr.mean(0), X_tr.std(0)
    def to_ds(X, y):
        return TensorDataset(torch.tensor((X - mean) / std, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-3, hidden=512):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, 3)),
        "train_loader": DataLoader(train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
