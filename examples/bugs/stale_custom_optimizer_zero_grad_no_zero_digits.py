# EXPECT: stale-gradients
# A hand-written SGD with momentum for an MLP on scikit-learn's digits. Its zero_grad()
# copies the first half of torch's own (detach the gradient from any graph) and leaves
# out the second half (p.grad.zero_()), so the gradient tensors keep their values and
# every backward() adds to them: each step applies the sum of all gradients so far.
# Measured on a copy: after backward(), step() and zero_grad(), 4 of 4 parameter
# tensors (4,810 values, 100%) still hold a non-zero gradient. In a training loop the
# single-batch loss explodes (2.33 -> 170 in 200 steps) although the learning rate is
# modest.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MomentumSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.detach_()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                p.add_(buf, alpha=-group["lr"])


def make_dataset():
    X, y = load_digits(return_X_y=True)
    return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))


def dldoctor_spec(hidden=64, lr=0.05):
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)),
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: MomentumSGD(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
