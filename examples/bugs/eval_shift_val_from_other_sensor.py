# EXPECT: distribution-shift
# A sensor-fault classifier trained on one sensor's readings and validated on another's, which reads 1.5x higher with an offset.
"""The validation split was recorded by a different device: same faults, same labels, but
its readings are scaled and offset. Training goes well; validation error is far higher."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed, gain=1.0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 12, generator=g)
    y = ((X[:, 0] + 0.8 * X[:, 1] - 0.5 * X[:, 2]) > 0.3).long()
    return TensorDataset(X * gain + offset, y)


def dldoctor_spec(lr=3e-3, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 2)),
        "train_loader": DataLoader(make_data(2000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(600, 1, gain=1.5, offset=0.8), batch_size=300),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
