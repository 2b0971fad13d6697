# EXPECT: healthy
# The look-alike of multi-hot rows fed to CrossEntropyLoss: a small CNN on scikit-learn's
# digits trained with nn.CrossEntropyLoss on float targets of the output's shape,
# label-smoothed by hand in the dataset (0.91 on the digit, 0.01 on each other class).
# Every row is a probability distribution (values in [0, 1] summing to 1), which is
# what CrossEntropyLoss reads float targets as, so its contract holds.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(channels * 4, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def make_dataset(smoothing=0.1):
    X, y = load_digits(return_X_y=True)
    soft = torch.full((len(y), 10), smoothing / 10)
    soft[torch.arange(len(y)), torch.tensor(y)] += 1 - smoothing
    return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8), soft)


def dldoctor_spec(lr=3e-3, channels=16, batch_size=64):
    return {
        "model": lambda: DigitNet(channels),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
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
