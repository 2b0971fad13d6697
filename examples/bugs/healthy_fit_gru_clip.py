# EXPECT: healthy
# A GRU that classifies noisy synthetic sine waves into 6 frequency bands, Adam with gradient clipping.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveGRU(nn.Module):
    def __init__(self, hidden_size=48, num_classes=6):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


def make_dataset(n=1024, steps=30):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    freq = 0.2 + 0.08 * labels.float().view(-1, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    waves = torch.sin(freq * t + phase) + 0.3 * torch.randn(n, steps, generator=g)
    return TensorDataset((waves / waves.std()).unsqueeze(-1), labels)


def dldoctor_spec(lr=1e-2, batch_size=64):
    return {
        "model": WaveGRU,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "grad_clip_norm": 1.0,
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
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["grad_clip_norm"])
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
