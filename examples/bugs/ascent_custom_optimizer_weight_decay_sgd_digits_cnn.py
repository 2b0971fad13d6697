# EXPECT: loss-sign-flipped
# A small CNN on scikit-learn's 8x8 digits, trained with a hand-written SGD with L2 weight
# decay. The update folds the decay into the gradient and then adds it to the weights
# (p.add_(d_p, alpha=lr)) instead of subtracting it: every step climbs the loss. Measured
# on a copy: the first update is at cosine -1.00 to the negative gradient and the loss on
# the same batch rises (2.308 -> 2.323) while a plain gradient step of the same length
# lowers it (to 2.294). The loss itself is fine: negating it "fixes" the fit only because it
# cancels the optimiser's sign.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DecaySGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, weight_decay=1e-4):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.add(p, alpha=group["weight_decay"])
                p.add_(d_p, alpha=group["lr"])


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return TensorDataset((X - X.mean()) / X.std(), torch.tensor(y))


def dldoctor_spec(lr=0.05):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: DecaySGD(params, lr=lr),
    }
