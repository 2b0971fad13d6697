# EXPECT: healthy
# STAGES: run, overfit, evaluate
"""A digits CNN trained with AMSGrad; it keeps its last features and logs losses as numbers.

Memory grows once, at the first optimiser step (AMSGrad's three state tensors per
parameter), then stays flat: the model overwrites one detached tensor each step and
the loss keeps plain floats. Nothing here leaks.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
        self.last_features = None  # for a debugging hook

    def forward(self, x):
        h = self.features(x)
        self.last_features = h.detach()  # overwritten, detached: constant memory
        return self.head(h)


class LoggedCrossEntropy(nn.Module):
    def __init__(self):
        super().__init__()
        self.history = []

    def forward(self, logits, targets):
        loss = nn.functional.cross_entropy(logits, targets)
        self.history.append(loss.item())  # a float per step
        return loss


def make_datasets(n=800):
    X, y = load_digits(return_X_y=True)
    X = ((X[:n] / 16.0 - 0.3) / 0.35).reshape(-1, 1, 8, 8).astype("float32")
    X_train, X_val, y_train, y_val = train_test_split(X, y[:n], test_size=0.25, random_state=0, stratify=y[:n])
    as_ds = lambda X, y: TensorDataset(torch.from_numpy(X), torch.from_numpy(y).long())  # noqa: E731
    return as_ds(X_train, y_train), as_ds(X_val, y_val)


def dldoctor_spec(lr=3e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": DigitsCNN,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": LoggedCrossEntropy(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, amsgrad=True),
        "task": "classification",
        "num_classes": 10,
    }
