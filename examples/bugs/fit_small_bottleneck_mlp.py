# EXPECT: model-too-small
# A one-hidden-layer MLP on scikit-learn's 8x8 digits, features standardised, trained with Adam.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsMLP(nn.Module):
    def __init__(self, hidden=2, num_classes=10):
        super().__init__()
        self.hidden = nn.Linear(64, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=3e-3, hidden=2, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: DigitsMLP(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=360),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        x, y = next(iter(spec["val_loader"]))
        with torch.no_grad():
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {(model(x).argmax(1) == y).float().mean():.3f}")
