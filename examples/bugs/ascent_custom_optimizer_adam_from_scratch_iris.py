# EXPECT: loss-sign-flipped
# An MLP on scikit-learn's iris data with Adam written from the paper. The bias-corrected
# update is applied with addcdiv_(..., value=lr), a plus where the paper has a minus, so
# every step moves each weight by about lr in the direction that raises the loss.
# Measured on a copy: the first update is at cosine -0.6 to the negative gradient (Adam's
# first step is -lr * sign(g), so a correct one is at +0.6), and the loss on the same
# batch rises (1.067 -> 1.160) while a plain gradient step of the same length lowers it.
import math

import torch
from sklearn.datasets import load_iris
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class PaperAdam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** state["t"])
                v_hat = state["v"] / (1 - beta2 ** state["t"])
                p.addcdiv_(m_hat, v_hat.sqrt().add_(group["eps"]), value=group["lr"])


class IrisNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3))

    def forward(self, x):
        return self.net(x)


def make_dataset():
    X, y = load_iris(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y))


def dldoctor_spec(lr=1e-2):
    return {
        "model": IrisNet,
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: PaperAdam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f} (ln 3 = {math.log(3):.4f})")
