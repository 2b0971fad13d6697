# EXPECT: memory-leak
# STAGES: run, overfit
"""An iris classifier whose custom forward collects the logits for a confusion matrix.

"My forward function (the batches are dicts) stores each batch's logits in a module-level
list, and the script builds a confusion matrix from them after training. The process
keeps growing."
"""
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset

ALL_LOGITS = []  # filled during training, read by the confusion-matrix code


class Flowers(Dataset):
    def __init__(self, X, y):
        self.X = torch.tensor(X, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.long)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"features": self.X[i], "species": self.y[i]}


def remember(logits):
    ALL_LOGITS.append(logits)  # the bug: keeps the tensor and its graph (logits.detach().cpu())
    return logits


def forward(model, batch):
    return remember(model(batch["features"])), batch["species"]


def make_datasets():
    X, y = load_iris(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return Flowers(scaler.transform(X_train), y_train), Flowers(scaler.transform(X_val), y_val)


def dldoctor_spec(lr=3e-3, batch_size=32):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "forward": forward,
    }
