# EXPECT: stale-gradients
# An MLP on scikit-learn's wine data with two parameter groups: the body at the base
# learning rate, the classifier at 10x. The custom optimiser's zero_grad() was written
# when it had one group and still clears only param_groups[0]: the classifier's
# gradients are never reset, so its steps apply the sum of all earlier gradients while
# the body trains normally. Measured on a copy: after backward(), step() and
# zero_grad(), group 0 is cleared and group 1 keeps 2 of 2 tensors (195 of 5,251
# values, 4%) with their old gradient.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class GroupedSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    def zero_grad(self, set_to_none=True):
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


def grouped(params, lr=0.02):
    params = list(params)  # the last two tensors are the classifier's weight and bias
    return GroupedSGD([{"params": params[:-2]}, {"params": params[-2:], "lr": 10 * lr}], lr=lr)


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y))


def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                       nn.Linear(64, 3)),
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": grouped,
    }
