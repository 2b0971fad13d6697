# EXPECT: loss-sign-flipped
# An MLP regressor on scikit-learn's diabetes data (standardised target, MSE) with a
# hand-written sign-momentum optimiser (signSGD with momentum, as in Lion's update). The
# step adds lr * sign(momentum) to the weights instead of subtracting it, so every
# weight moves uphill by lr each step. Measured on a copy: the first update is at cosine
# -0.46 to the negative gradient and the loss on the same batch rises (1.067 -> 1.161)
# while a plain gradient step of the same length lowers it (to 0.959); over a single-batch
# fit the MSE grows to thousands.
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SignMomentum(torch.optim.Optimizer):
    def __init__(self, params, lr=3e-3, beta=0.9):
        super().__init__(params, dict(lr=lr, beta=beta))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                p.add_(torch.sign(buf), alpha=group["lr"])


def make_dataset():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), ((y - y.mean()) / y.std()).unsqueeze(1))


def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(10, 64), nn.SiLU(), nn.Linear(64, 1)),
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: SignMomentum(params),
    }
