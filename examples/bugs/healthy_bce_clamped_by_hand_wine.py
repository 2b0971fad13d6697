# EXPECT: healthy
# The look-alike of a hand-written binary cross-entropy that takes log of 0: an MLP
# tells scikit-learn's class-0 wines from the rest with BCE written out by hand on
# sigmoid probabilities, at a brisk Adam learning rate (0.01, the same as the buggy
# cases) - but the probabilities are clamped into [1e-6, 1 - 1e-6] before the logs, so
# a saturated sigmoid gives log(1e-6), not -inf. The single batch fits without a NaN;
# no NaN means no learning-rate experiment, and nothing is reported.
import torch
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPS = 1e-6


def clamped_bce(logits, targets):
    p = torch.sigmoid(logits).clamp(EPS, 1 - EPS)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y == 0, dtype=torch.float32).view(-1, 1))


def dldoctor_spec(lr=1e-2, hidden=32, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 1)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": clamped_bce,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
