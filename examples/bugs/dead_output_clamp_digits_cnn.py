# EXPECT: dead-activations
# A digits CNN that clamps its class scores at zero ("scores should not be negative") before
# CrossEntropyLoss. The clamp is a ReLU by another name: the loss pushes each wrong class's
# score down to exactly 0, and a class whose score is 0 for every image gets no gradient again
# and is never predicted.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.scores = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.scores(self.features(x)).clamp(min=0.0)


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    X = (X - X.mean()) / X.std()
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(5))
    train, val = order[:1400], order[1400:]
    return {
        "model": DigitNet,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=3e-3),
    }
