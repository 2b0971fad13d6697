# EXPECT: memory-leak
# STAGES: run, overfit
"""A digits MLP whose loss keeps a running total to report the epoch's mean loss.

"The loss object adds every batch's loss to a running sum and divides by the count at
the end of the epoch for the progress bar. Training gets slower and slower and memory
grows until the machine swaps."
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class AveragedCrossEntropy:
    """Cross-entropy that also tracks the mean loss for the progress bar."""

    def __init__(self):
        self.running = torch.zeros(())
        self.count = 0

    def __call__(self, logits, targets):
        loss = nn.functional.cross_entropy(logits, targets)
        self.running = self.running + loss  # the bug: chains every step's graph (use loss.item())
        self.count += 1
        return loss

    @property
    def mean(self):
        return self.running / max(1, self.count)


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    as_ds = lambda X, y: TensorDataset(torch.from_numpy(X), torch.from_numpy(y).long())  # noqa: E731
    return as_ds(X_train, y_train), as_ds(X_val, y_val)


def dldoctor_spec(lr=3e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": AveragedCrossEntropy(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
        "num_classes": 10,
    }
