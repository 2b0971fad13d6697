# EXPECT: healthy
# STAGES: run
# An MLP on scikit-learn's wine measurements, fed the raw chemical units (proline in the
# hundreds to thousands, hue around 1) on purpose: the model's first module standardises
# them with the training split's mean and std, kept as registered buffers so that they
# travel with the state dict. The first Linear layer therefore sees unit-scale features
# (rms 1.0, scales within 1x of each other), while the raw batch has rms ~330 and scales
# 2000x apart: measured at the batch, this would look like the raw-features bug.
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Standardize(nn.Module):
    """x -> (x - mean) / std with constants fitted on the training split (not trained)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-3, hidden=32):
    train, val = make_datasets()
    X = train.tensors[0]
    mean, std = X.mean(0), X.std(0)

    def make_model():
        return nn.Sequential(Standardize(mean, std), nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
