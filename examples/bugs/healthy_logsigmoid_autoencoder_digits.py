# EXPECT: healthy
# The look-alike of the autoencoder whose hand-written reconstruction loss takes log of
# 0: the same ink-mask autoencoder on scikit-learn's digits, the same Adam at lr 0.01,
# the same binary cross-entropy summed over pixels - but the decoder returns logits and
# the loss is written with F.logsigmoid (log sigmoid(z) and log(1 - sigmoid(z)) =
# logsigmoid(-z)), which stays finite however confident the decoder gets. The single
# batch fits with no NaN, so there is nothing to report.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Autoencoder(nn.Module):
    def __init__(self, code=16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, code))
        self.decoder = nn.Sequential(nn.Linear(code, 128), nn.ReLU(), nn.Linear(128, 64))

    def forward(self, x):
        return self.decoder(self.encoder(x))


def reconstruction_loss(logits, x):
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(dim=1).mean()


def make_dataset():
    X, _ = load_digits(return_X_y=True)
    ink = torch.tensor(X > 7, dtype=torch.float32)
    return TensorDataset(ink, ink)


def dldoctor_spec(lr=1e-2, code=16, batch_size=64):
    return {
        "model": lambda: Autoencoder(code),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": reconstruction_loss,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, _ in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), x)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
