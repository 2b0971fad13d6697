# EXPECT: label-out-of-range
# A binary template reused for a three-class problem: an MLP with one sigmoid output and
# nn.BCELoss, trained on scikit-learn's wine data, whose labels are the three cultivars
# 0, 1 and 2 (stored as floats of the output's shape [N, 1]). BCELoss reads each target
# as the probability of one positive class, so the first batch's targets {0, 1, 2}
# already break its contract: torch raises "all elements of target should be between 0
# and 1" inside the loss. dldoctor names the crash by that contract (labels outside the
# loss's range, three classes into a one-output binary loss) rather than as an unknown
# error in the training step, and points to CrossEntropyLoss with a 3-wide head.
import torch
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(hidden=32):
    return nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).view(-1, 1))


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=32):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
