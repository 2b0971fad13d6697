# EXPECT: healthy
# An MLP on scikit-learn's digits trained with a hand-written SGD with momentum and
# weight decay whose zero_grad() keeps the gradient tensors allocated (set_to_none=False
# by default, as torch's own optimisers did before 2.0) and fills them with zeros. It
# tempts stale-gradients (the .grad tensors are never None between steps) and
# loss-sign-flipped (a custom step()): measured on a copy, zero_grad() leaves 0 of 4
# tensors non-zero, and the first step is at cosine +1.00 to the negative gradient and
# lowers the loss on the same batch.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MomentumSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9, weight_decay=1e-4):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def zero_grad(self, set_to_none: bool = False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.add(p, alpha=group["weight_decay"])
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(d_p)
                p.add_(buf, alpha=-group["lr"])


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / (X.std(0) + 1e-6), torch.tensor(y))


def dldoctor_spec(hidden=64, lr=0.05):
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)),
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: MomentumSGD(params, lr=lr),
    }
