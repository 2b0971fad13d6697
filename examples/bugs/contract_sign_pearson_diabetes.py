# EXPECT: loss-sign-flipped
# An MLP on scikit-learn's diabetes data trained on a correlation objective: the loss
# is the Pearson correlation between the batch's predictions and targets, meant as
# "maximise the correlation" but returned as it is, without the minus sign. The
# optimiser minimises it and drives the correlation towards -1: the predictions learn
# to rank the patients backwards, while the loss curve falls smoothly. The sign test
# shows it without training: the loss is 1 at a perfect prediction, its highest value,
# against about 0 at the model's first outputs, and a perfect prediction is a stationary
# point (a correlation's maximum), so this is loss-sign-flipped, not a loss to minimise.
import torch
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def correlation_loss(predictions, targets):
    p = predictions.view(-1) - predictions.mean()
    t = targets.view(-1) - targets.mean()
    return (p * t).sum() / (p.norm() * t.norm() + 1e-8)


def make_dataset():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y / 100.0, dtype=torch.float32))


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Flatten(0)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": correlation_loss,
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
