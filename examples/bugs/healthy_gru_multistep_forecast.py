# EXPECT: healthy
# A GRU that forecasts the next three values of noisy synthetic seasonal series.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HORIZON = 3


class Forecaster(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, HORIZON)

    def forward(self, window):
        _, h_n = self.gru(window)
        return self.out(h_n[-1])


def make_dataset(n=800, window=24):
    g = torch.Generator().manual_seed(0)
    t = torch.arange(window + HORIZON, dtype=torch.float32)
    period = 6 + 10 * torch.rand(n, 1, generator=g)
    phase = 6.28 * torch.rand(n, 1, generator=g)
    series = torch.sin(6.28 * t / period + phase) + 0.1 * torch.randn(n, window + HORIZON, generator=g)
    return TensorDataset(series[:, :window].unsqueeze(-1), series[:, window:])


def dldoctor_spec(lr=3e-3, hidden_size=32, batch_size=64):
    return {
        "model": lambda: Forecaster(hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.SmoothL1Loss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "regression",
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
