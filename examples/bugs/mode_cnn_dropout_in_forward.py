# EXPECT: wrong-mode
# A small CNN with spatial dropout on scikit-learn's 8x8 digits, with a validation split.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 4 * 4, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = nn.Dropout2d(0.2)(x)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 1, 8, 8).astype("float32") / 16.0
    X = (X - X.mean()) / X.std()
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return (TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr)),
            TensorDataset(torch.from_numpy(X_va), torch.from_numpy(y_va)))


def dldoctor_spec(lr=1e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": DigitsCNN,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        model.train()
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            acc = sum((model(x).argmax(1) == y).sum().item() for x, y in spec["val_loader"]) / 360
        print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {acc:.3f}")
