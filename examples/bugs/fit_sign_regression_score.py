# EXPECT: loss-sign-flipped
# An MLP regressor on scikit-learn's diabetes data, inputs and target standardised, SGD with momentum.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(nn.Module):
    def __init__(self, in_features=10, hidden=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def neg_mean_squared_error(pred, target):
    return -F.mse_loss(pred, target)


def make_datasets():
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    mean, std = y_tr.mean(), y_tr.std()
    def to_ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),
                             torch.tensor((y - mean) / std, dtype=torch.float32))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=0.01, batch_size=32):
    train, val = make_datasets()
    return {
        "model": Regressor,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": neg_mean_squared_error,
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(50):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        x, y = next(iter(spec["val_loader"]))
        with torch.no_grad():
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_mse {F.mse_loss(model(x), y).item():.4f}")
