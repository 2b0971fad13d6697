# EXPECT: stale-gradients
# Logistic-regression-style MLP on scikit-learn's breast cancer data, with a hand-written
# Adagrad. Its zero_grad(set_to_none=True) follows the belief that the next backward()
# overwrites .grad, so with the default set_to_none=True it leaves the gradient tensors
# as they are (it only zeroes them when set_to_none=False). backward() accumulates into
# .grad, so every step applies the sum of all gradients so far. Measured on a copy: after
# backward(), step() and zero_grad(), 4 of 4 parameter tensors still hold their gradient.
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Adagrad(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, eps=1e-10):
        super().__init__(params, dict(lr=lr, eps=eps))

    def zero_grad(self, set_to_none: bool = True):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not set_to_none:
                    p.grad.zero_()
                # set_to_none: the next backward() writes a fresh gradient

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                total = self.state[p].setdefault("sum", torch.zeros_like(p))
                total.addcmul_(p.grad, p.grad)
                p.addcdiv_(p.grad, total.sqrt().add_(group["eps"]), value=-group["lr"])


def make_dataset():
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y, dtype=torch.float32).unsqueeze(1))


def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1)),
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: Adagrad(params),
    }
