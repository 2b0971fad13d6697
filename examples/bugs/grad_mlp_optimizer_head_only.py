# EXPECT: no-gradient-flow
# An MLP on scikit-learn's wine data set; the model object is built once and shared with the optimiser.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WineNet(nn.Module):
    def __init__(self, hidden=64, num_classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.body(x))


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    return TensorDataset(X, torch.tensor(y))


def dldoctor_spec(lr=0.05, batch_size=32):
    model = WineNet()
    return {
        "model": model,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(model.classifier.parameters(), lr=lr, momentum=0.9),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
