# EXPECT: loss-sign-flipped
# Zero-shot style training on scikit-learn's digits: an MLP maps each image to a
# 12-dimensional attribute embedding of its digit (a fixed random vector per class), and
# the loss is the cosine similarity between prediction and target,
# F.cosine_similarity(outputs, targets).mean(), with the "1 -" forgotten. Minimising a
# similarity pushes every prediction to point away from its target. Nothing crashes and
# the overfit curve even looks fine (the loss falls from ~0 towards -1). dldoctor's
# sign test reads the loss itself: at a perfect prediction (outputs equal to the
# targets) it is 1, its maximum, and it rises monotonically from the model's outputs to
# there, so the objective is being maximised: loss-sign-flipped, at the loss.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def similarity_loss(outputs, targets):
    return F.cosine_similarity(outputs, targets, dim=1).mean()


def make_dataset():
    X, y = load_digits(return_X_y=True)
    attributes = torch.randn(10, 12, generator=torch.Generator().manual_seed(4))
    return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), attributes[torch.tensor(y)])


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 12)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": similarity_loss,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
