# EXPECT: label-out-of-range
# A GRU that reads synthetic bearing-vibration sequences and was meant to flag faults
# (a sigmoid output with nn.BCELoss), but the dataset gives it the fault *severity*
# 0..3 as an integer tensor of shape [N, 1]. Torch stops at the dtype ("Found dtype Long
# but expected Float"), and converting the targets with .float() would only move the
# crash to "all elements of target should be between 0 and 1": the values themselves
# are four classes, not probabilities. dldoctor names the crash by the loss's contract
# (targets {0, 1, 2, 3} into a one-output BCELoss) and suggests CrossEntropyLoss with a
# 4-wide head, or mapping the severity to fault / no fault.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class FaultDetector(nn.Module):
    def __init__(self, hidden_size=24):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, 1), nn.Sigmoid())

    def forward(self, x):
        _, h_n = self.gru(x)
        return self.head(h_n[-1])


def make_dataset(n=600, steps=40):
    g = torch.Generator().manual_seed(3)
    severity = torch.randint(0, 4, (n, 1), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    base = torch.sin(0.7 * t + 6.28 * torch.rand(n, 1, generator=g))
    impacts = (torch.rand(n, steps, generator=g) < 0.05 * severity).float() * (1.0 + severity)
    x = base + impacts + 0.2 * torch.randn(n, steps, generator=g)
    return TensorDataset(x.unsqueeze(-1), severity)


def dldoctor_spec(lr=2e-3, hidden_size=24, batch_size=48):
    return {
        "model": lambda: FaultDetector(hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
