# EXPECT: label-out-of-range
# A GRU that monitors machines from vibration sequences: state 0 = normal, 1 = worn, 2 = failing.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class StateMonitor(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.gru = nn.GRU(input_size=2, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        _, h_n = self.gru(x)
        return self.head(h_n[-1])


def make_dataset(n=900, steps=32):
    g = torch.Generator().manual_seed(0)
    state = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    amplitude = 0.5 + 0.5 * state.float().view(-1, 1)
    vibration = amplitude * torch.sin(1.3 * t + 6.28 * torch.rand(n, 1, generator=g))
    temperature = 0.3 * state.float().view(-1, 1) + 0.2 * torch.randn(n, steps, generator=g)
    x = torch.stack([vibration + 0.2 * torch.randn(n, steps, generator=g), temperature], dim=-1)
    return TensorDataset(x, state.float().view(-1, 1))


def dldoctor_spec(lr=3e-3, hidden_size=32, batch_size=64):
    return {
        "model": lambda: StateMonitor(hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
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
