# EXPECT: loss-input-probabilities
# A small CNN that tells even from odd digits (scikit-learn's 8x8 digits). Its author maps the
# score to a "confidence" with (tanh(z) + 1) / 2 and trains that with BCEWithLogitsLoss: the
# loss squashes a second time, so it sees inputs confined to [0, 1].
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ParityNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Linear(8 * 4 * 4, 1)

    def forward(self, x):
        return (torch.tanh(self.head(self.conv(x))) + 1.0) / 2.0


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    X = (X - 0.3) / 0.4
    y = torch.tensor(y % 2, dtype=torch.float32).view(-1, 1)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, val = order[:1400], order[1400:]
    return {
        "model": ParityNet,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(1)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=2e-3),
    }
