# EXPECT: overfitting
# ALSO: too-little-data
# A two-hidden-layer MLP classifying 100 synthetic patients (the training set) from a
# 100-gene expression panel in which only 3 genes carry the outcome, validated on 60
# other patients: the many-features, few-samples setting of many biology pilots. The
# network memorises its training patients through the 97 irrelevant genes: training
# error reaches 0 while validation error stays at 0.35. The validation set is small
# (the gap's standard error is 0.061), yet the gap is far beyond it: its lower bound
# (gap - 2 standard errors) is 0.23, well above the 0.05 a warning needs.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

GENES = 100


def make_cohort(n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, GENES, generator=g)
    score = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 1.0 * X[:, 2] + 0.5 * torch.randn(n, generator=g)
    return TensorDataset(X, (score > 0).long())


def dldoctor_spec(lr=1e-3, hidden=256):
    return {
        "model": lambda: nn.Sequential(nn.Linear(GENES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, 2)),
        "train_loader": DataLoader(make_cohort(100, seed=0), batch_size=10, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_cohort(60, seed=1), batch_size=60),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
