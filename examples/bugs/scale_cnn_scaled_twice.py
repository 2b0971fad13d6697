# EXPECT: input-not-normalized
# A CNN on scikit-learn's 8x8 digits served by a map-style Dataset with a ToTensor-like transform.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset


def to_tensor(grey):
    """Like torchvision's ToTensor: 8-bit grey levels to floats in [0, 1]."""
    return torch.tensor(grey, dtype=torch.float32).div(255.0).view(1, 8, 8)


class DigitImages(Dataset):
    def __init__(self):
        X, y = load_digits(return_X_y=True)
        self.grey = (X * 255 / 16).round()
        self.labels = torch.tensor(y)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = to_tensor(self.grey[i]) / 255.0
        return image, self.labels[i]


def make_model(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, num_classes),
    )


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": make_model,
        "train_loader": DataLoader(DigitImages(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for images, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
