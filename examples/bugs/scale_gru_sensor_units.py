# EXPECT: input-not-normalized
# A GRU that classifies a machine's state from a day of temperature, humidity and vibration logs.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SensorGRU(nn.Module):
    def __init__(self, hidden_size=32, num_classes=3):
        super().__init__()
        self.gru = nn.GRU(input_size=3, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


def make_dataset(n=512, steps=24):
    g = torch.Generator().manual_seed(0)
    state = torch.randint(0, 3, (n,), generator=g)
    drift = state.float().view(-1, 1)
    t = torch.linspace(0, 1, steps)
    temperature = 60.0 + 4.0 * drift * t + torch.randn(n, steps, generator=g)
    humidity = 45.0 - 6.0 * drift * t + 3.0 * torch.randn(n, steps, generator=g)
    vibration = 2.0 * (1 + drift) * torch.randn(n, steps, generator=g).abs()
    readings = torch.stack([temperature, humidity, vibration], dim=-1)
    return TensorDataset(readings, state)


def dldoctor_spec(lr=1e-3, hidden_size=32, batch_size=32):
    return {
        "model": lambda: SensorGRU(hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
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
