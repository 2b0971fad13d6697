# EXPECT: memory-leak
# STAGES: run, overfit
"""A breast-cancer classifier whose loss module records every value it returns.

"My loss class keeps a history of the losses so the training script can plot the
curve at the end. Memory use climbs all through training, even though the model and
the batches never change size."
"""
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LoggedBCE(nn.Module):
    """BCE with logits that remembers its values for plotting."""

    def __init__(self):
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()
        self.history = []

    def forward(self, logits, targets):
        loss = self.bce(logits.squeeze(1), targets)
        self.history.append(loss)  # the bug: the tensor, not loss.item()
        return loss


def make_datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    as_ds = lambda X, y: TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),  # noqa: E731
                                       torch.tensor(y, dtype=torch.float32))
    return as_ds(X_train, y_train), as_ds(X_val, y_val)


def dldoctor_spec(lr=3e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                       nn.Linear(32, 1)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": LoggedBCE(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }
