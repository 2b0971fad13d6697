# EXPECT: numerical-instability
# An MLP autoencoder reconstructs scikit-learn's 8x8 digits as ink masks (pixel > 7 is
# ink), ending in nn.Sigmoid, with the usual reconstruction loss written out by hand:
# binary cross-entropy summed over the 64 pixels, -(x log p + (1 - x) log(1 - p)). Pixels
# that are ink in every image of the batch get driven to p = 1.0 exactly (a logit above
# ~17 rounds there in float32); log(1 - p) is then -inf and 0 * -inf NaN, at step 40 with
# Adam at lr 0.01. At lr 0.001, past convergence, it comes back at the same torch.log
# (step 172): a smaller step only postpones the log of 0, so dldoctor reports
# numerical-instability at the loss's line (F.binary_cross_entropy_with_logits on the
# decoder's logits, or clamping p), not a learning rate that is too high.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Autoencoder(nn.Module):
    def __init__(self, code=16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, code))
        self.decoder = nn.Sequential(nn.Linear(code, 128), nn.ReLU(), nn.Linear(128, 64), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def reconstruction_loss(p, x):
    return -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=1).mean()


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
