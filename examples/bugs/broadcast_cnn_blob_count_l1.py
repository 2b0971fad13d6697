# EXPECT: loss-broadcast
# A small CNN that estimates how many bright blobs a synthetic 16x16 image contains.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class BlobCounter(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.regressor = nn.Linear(channels, 1)

    def forward(self, x):
        return self.regressor(self.features(x).flatten(1))


def make_dataset(n=600, size=16):
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 6, (n,), generator=g)
    images = 0.1 * torch.randn(n, 1, size, size, generator=g)
    for i, k in enumerate(counts.tolist()):
        rows = torch.randint(0, size - 1, (k,), generator=g)
        cols = torch.randint(0, size - 1, (k,), generator=g)
        for r, c in zip(rows.tolist(), cols.tolist()):
            images[i, 0, r:r + 2, c:c + 2] += 1.0
    return TensorDataset(images, (counts.float() - 2.5) / 1.7)


def mean_abs_error(pred, target):
    return (pred - target).abs().mean()


def dldoctor_spec(lr=3e-3, channels=8, batch_size=32):
    return {
        "model": lambda: BlobCounter(channels),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": mean_abs_error,
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
