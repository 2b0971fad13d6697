# EXPECT: dead-activations
# ALSO: bad-initialization
# A ReLU MLP that detects faults in synthetic sensor snapshots (25% faulty), output bias set to the prior log-odds.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

FAULT_RATE = 0.25


class FaultDetector(nn.Module):
    def __init__(self, in_features=20, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.constant_(m.bias, math.log(FAULT_RATE / (1 - FAULT_RATE)))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def make_dataset(n=2048):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 20, generator=g)
    w = torch.randn(20, generator=g)
    score = x @ w + 0.5 * (x[:, 0] * x[:, 1])
    y = (score > torch.quantile(score, 1 - FAULT_RATE)).float()
    return TensorDataset(x, y)


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": FaultDetector,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
