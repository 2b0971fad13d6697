# EXPECT: healthy
# STAGES: run
# A small CNN on scikit-learn's digits upsampled to 16x16 and stored as raw 8-bit grey
# levels (0-255). The network's first module is an ImageNet-style Normalize whose mean
# and std are nn.Parameters with requires_grad=False (a common way of keeping constants
# in the state dict). It runs `(x / 255 - mean) / std` before the first convolution, so
# the first trainable layer sees values of rms ~1, not the raw pixels of rms ~100.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class PixelNormalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean = nn.Parameter(torch.tensor(mean).view(1, -1, 1, 1), requires_grad=False)
        self.std = nn.Parameter(torch.tensor(std).view(1, -1, 1, 1), requires_grad=False)

    def forward(self, x):
        return (x / 255.0 - self.mean) / self.std


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.normalize = PixelNormalize([0.30], [0.40])
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.normalize(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


def make_datasets():
    X, y = load_digits(return_X_y=True)
    images = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8)
    images = F.interpolate(images, size=16, mode="bilinear", align_corners=False)
    grey = (images * 255 / 16).round().clamp(0, 255)
    X_tr, X_va, y_tr, y_va = train_test_split(grey, torch.tensor(y), test_size=0.2, random_state=0)
    return TensorDataset(X_tr, y_tr), TensorDataset(X_va, y_va)


def dldoctor_spec(lr=1e-3):
    train, val = make_datasets()
    return {
        "model": Net,
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
