# EXPECT: underfitting
# A wide MLP with AdamW and a weight decay of 0.3 (meant to be 3e-4) on labels from a teacher network.
"""The decay is a thousand times the usual value. A single batch of 64 is still fitted,
but across 4,000 samples the shrunken weights cannot follow the teacher's boundary:
training error stays far above zero although a model this size can learn the labels."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.Generator().manual_seed(321)
    w1, w2 = torch.randn(12, 96, generator=teacher), torch.randn(96, 5, generator=teacher)
    X = torch.randn(n, 12, generator=g)
    return TensorDataset(X, (torch.tanh(X @ w1) @ w2).argmax(1))


def dldoctor_spec(lr=3e-3, weight_decay=0.3, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(12, 128), nn.ReLU(), nn.Linear(128, 5)),
        "train_loader": DataLoader(make_data(4000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(1000, 1), batch_size=500),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
        "irreducible_error": 0.0,
    }
