# EXPECT: wrong-mode
# A GRU classifier of noisy synthetic waveforms (sine/square/saw) with a normalised head.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveGRU(nn.Module):
    def __init__(self, hidden=32, num_classes=3):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        _, h_n = self.gru(x)
        h = nn.BatchNorm1d(h_n.size(-1))(h_n[-1])
        return self.fc(torch.relu(h))


def make_dataset(n, seed, steps=40):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32) * 0.3 + torch.rand(n, 1, generator=g) * 6.28
    sine, square = torch.sin(t), torch.sign(torch.sin(t))
    saw = 2 * (t / 6.28 - torch.floor(t / 6.28 + 0.5))
    waves = torch.stack([sine, square, saw], dim=1)[torch.arange(n), labels]
    x = waves + 0.2 * torch.randn(n, steps, generator=g)
    return TensorDataset(x.unsqueeze(-1), labels)


def dldoctor_spec(lr=3e-3, batch_size=32):
    return {
        "model": WaveGRU,
        "train_loader": DataLoader(make_dataset(900, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_dataset(300, 1), batch_size=300),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        model.train()
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            x, y = next(iter(spec["val_loader"]))
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
