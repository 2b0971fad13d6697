# EXPECT: memory-leak
# STAGES: run, overfit
"""A wine classifier that keeps its hidden features to plot them after training.

"I append the hidden layer's output to a list on the model every forward pass, so that
I can draw a t-SNE of the embeddings once training is done. After a few hours the job
is killed for running out of memory."
"""
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WineNet(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 3)
        self.embeddings = []  # for the t-SNE plot

    def forward(self, x):
        h = self.encoder(x)
        self.embeddings.append(h)  # the bug: keeps every batch's features, with their graph
        return self.head(h)


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    as_ds = lambda X, y: TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),  # noqa: E731
                                       torch.tensor(y, dtype=torch.long))
    return as_ds(X_train, y_train), as_ds(X_val, y_val)


def dldoctor_spec(lr=1e-3, batch_size=32):
    train, val = make_datasets()
    return {
        "model": WineNet,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
