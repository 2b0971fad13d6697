# EXPECT: label-out-of-range
# A small CNN on scikit-learn's 8x8 digits with a single logit and nn.BCEWithLogitsLoss,
# fed the digit ids 0..9 as float targets of shape [N]. The loss takes probabilities of
# the output's shape ([N, 1] here), so torch raises a size error inside the loss; read
# on its own, that message suggests a reshape, and the float targets suggest class
# indices stored in the wrong dtype. Neither fix helps: targets 0..9 are ten classes,
# and no binary cross-entropy can take a target of 7. dldoctor names the crash by the
# loss's contract (targets {0, ..., 9} outside [0, 1]) and points to CrossEntropyLoss
# with a 10-wide head and long targets.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * channels, 1)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def make_dataset():
    X, y = load_digits(return_X_y=True)
    images = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return TensorDataset(images, torch.tensor(y, dtype=torch.float32))


def dldoctor_spec(lr=1e-3, channels=16, batch_size=64):
    return {
        "model": lambda: DigitNet(channels),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
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
