# EXPECT: healthy
# Even-vs-odd digits with an MLP whose last layer is initialised small and non-negative
# (uniform in [0, 0.01], bias 0.05) after ReLU features: the first logits are all small
# positive numbers, inside (0, 1), by construction of the init alone. With BCEWithLogitsLoss
# the model trains normally; the range is not a sigmoid.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model():
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 1))
    nn.init.uniform_(model[2].weight, 0.0, 0.01)
    nn.init.constant_(model[2].bias, 0.05)
    return model


def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(y % 2, dtype=torch.float32).unsqueeze(1)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(2))
    train, val = order[:1400], order[1400:]
    return {
        "model": make_model,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }
