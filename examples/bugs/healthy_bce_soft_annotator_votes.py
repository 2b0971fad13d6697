# EXPECT: healthy
# The look-alike of class indices fed to a binary cross-entropy: an MLP on scikit-learn's
# breast-cancer data learns the share of five (simulated) pathologists who called each
# case malignant, with nn.BCEWithLogitsLoss. The targets are floats of the output's
# shape taking the values 0, 0.2, ..., 1: not 0/1 labels, but every one a probability
# in [0, 1], which is exactly what the loss takes. Nothing in the loss's contract is
# broken, and the single batch is fitted to the votes.
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_dataset(readers=5):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    g = torch.Generator().manual_seed(6)
    truth = torch.tensor(y == 0, dtype=torch.float32)
    # Each reader agrees with the biopsy 85% of the time.
    agree = torch.rand(len(y), readers, generator=g) < 0.85
    votes = torch.where(agree, truth.view(-1, 1), 1 - truth.view(-1, 1)).mean(dim=1, keepdim=True)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), votes)


def dldoctor_spec(lr=3e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, 1)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
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
