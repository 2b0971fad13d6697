# EXPECT: healthy
# STAGES: run, overfit
# A batch-norm CNN on scikit-learn's 8x8 digits, ported from Keras: its BatchNorm layers
# keep Keras's running-average decay of 0.99 (momentum=0.01 in PyTorch), and it trains
# with SGD + momentum on batches of 8. After fitting a single batch (11 steps) the running
# statistics are still ~90% their initial values, so the model read in eval mode predicts
# another batch at chance, and with shuffled labels it memorises 4 batches as fast as
# with real ones (loss 0.0026 vs 0.0025); at a tenth of the rate the real labels win
# (0.15 vs 0.24), which was read as lr-too-high. With the running statistics recomputed
# over the batch it trained on, the same one-batch model scores 0.5 on the held-out
# batch (chance 0.0): the labels carry signal, and the slow running averages are Keras's,
# not a bug.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(width=64):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width, momentum=0.01), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width, momentum=0.01), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width, momentum=0.01), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(y)
    return TensorDataset(X[:1400], y[:1400]), TensorDataset(X[1400:], y[1400:])


def dldoctor_spec(lr=0.05):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }
