# EXPECT: lr-too-high
# STAGES: run, overfit, compare, evaluate
# A digits MLP trained with Adam at 2e-2, twenty times the usual 1e-3. It learns in the first
# epoch, then the loss jumps back up every few hundred steps as Adam's large steps throw the
# weights out of the minimum they had found: after five epochs the training error is still
# 6-7%, where the same model at a tenth of the rate fits to about 3%.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, val = order[:1400], order[1400:]
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                       nn.Linear(128, 10)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=2e-2),
    }
