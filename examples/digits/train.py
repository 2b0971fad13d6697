"""A small CNN on scikit-learn's 8x8 handwritten digits."""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 4 * 4, 64), nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def load_data():
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 1, 8, 8).astype("float32") / 16.0
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = X_train.mean(), X_train.std()
    X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    train = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train).long())
    val = TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val).long())
    return train, val


def dldoctor_spec(lr=1e-3, width=16, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: DigitsCNN(width=width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256, shuffle=False),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
        "num_classes": 10,
        "reference": {"metric": "val_accuracy", "value": 0.96,
                      "source": "small CNN on sklearn digits, typical result"},
    }


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        model.train()
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        acc = evaluate(model, spec["val_loader"])
        print(f"epoch {epoch + 1:2d}  loss {loss.item():.4f}  val_accuracy {acc:.4f}")
