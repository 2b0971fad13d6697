# EXPECT: loss-input-probabilities
# A GRU that flags sensor sequences containing a spike (binary, one output per sequence).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SpikeDetector(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        _, h_n = self.gru(x)
        return torch.sigmoid(self.head(h_n[-1]))

    @torch.no_grad()
    def predict(self, x):
        return (self.forward(x) > 0.5).long()


def make_dataset(n=800, steps=40):
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(n, steps, generator=g)
    has_spike = torch.rand(n, generator=g) < 0.5
    where = torch.randint(0, steps, (n,), generator=g)
    x[has_spike, where[has_spike]] += 3.0
    return TensorDataset(x.unsqueeze(-1), has_spike.float().unsqueeze(1))


def dldoctor_spec(lr=3e-3, hidden_size=32, batch_size=64):
    return {
        "model": lambda: SpikeDetector(hidden_size),
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
