# EXPECT: input-not-normalized
# A small CNN whose first module applies ImageNet-style normalisation, (x - 0.449) / 0.226,
# written for images already scaled to [0, 1] (as transforms.ToTensor() leaves them). The
# data set, though, hands it scikit-learn digits as raw 8-bit grey levels (0-255): nobody
# divided by 255. The model's own Normalize therefore turns pixels into values up to
# ~1100 (rms ~500 at the first convolution). Measured where the first trainable layer
# receives them, after the model's fixed preprocessing, the inputs are ~500x unit scale.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def make_model():
    return nn.Sequential(
        Normalize([0.449], [0.226]),
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    images = F.interpolate(torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8), size=16, mode="bilinear",
                           align_corners=False)
    grey = (images * 255 / 16).round().clamp(0, 255)  # 8-bit grey levels, never divided by 255
    X_tr, X_va, y_tr, y_va = train_test_split(grey, torch.tensor(y), test_size=0.2, random_state=0)
    return TensorDataset(X_tr, y_tr), TensorDataset(X_va, y_va)


def dldoctor_spec(lr=1e-3):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
