# EXPECT: healthy
# The look-alike of a correlation returned without its minus sign: a 1-D CNN reads
# synthetic vibration windows and predicts a wear score, trained with the negative
# Pearson correlation of the batch (the loss runs from +1 to -1, and is negative for
# any useful model). A perfect prediction gives -1, the lowest the loss can go, lower
# than at the model's outputs, so the sign test stays silent; the single batch fits.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WearNet(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(1, channels, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(channels, channels, 5, padding=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool1d(1))
        self.head = nn.Linear(channels, 1)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1)).view(-1)


def negative_correlation(predictions, targets):
    p = predictions - predictions.mean()
    t = targets - targets.mean()
    return -(p * t).sum() / (p.norm() * t.norm() + 1e-8)


def make_dataset(n=384, length=64):
    g = torch.Generator().manual_seed(9)
    wear = torch.rand(n, generator=g)
    t = torch.arange(length, dtype=torch.float32)
    # A worn bearing rattles faster: the wear shifts the vibration's frequency, not its size.
    phase = 6.28 * torch.rand(n, 1, generator=g)
    signal = torch.sin((0.3 + 1.2 * wear.view(-1, 1)) * t + phase) + 0.3 * torch.randn(n, length, generator=g)
    return TensorDataset(signal.unsqueeze(1), wear)


def dldoctor_spec(lr=3e-3, channels=8, batch_size=64):
    return {
        "model": lambda: WearNet(channels),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": negative_correlation,
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
