# EXPECT: healthy
# A small MLP on scikit-learn's breast cancer data with Adam written by hand: it keeps a
# step count and two running moments per parameter in self.state (state that must
# survive zero_grad(), unlike the gradients) and inherits torch's zero_grad(). It tempts
# stale-gradients and loss-sign-flipped: measured on a copy, zero_grad() leaves no
# gradient behind, and the first update is at cosine +0.57 to the negative gradient
# (Adam's first step is -lr * sign(g)) and lowers the loss on the same batch.
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class HandAdam(torch.optim.Optimizer):
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
                p.addcdiv_(m_hat, v_hat.sqrt().add_(group["eps"]), value=-group["lr"])


def make_dataset():
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y, dtype=torch.float32).unsqueeze(1))


def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1)),
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: HandAdam(params),
    }
