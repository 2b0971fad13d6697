# EXPECT: label-out-of-range
# An MLP that predicts a 1-10 review rating from 20 synthetic review features.
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

NUM_RATINGS = 10


def make_model(hidden=64):
    return nn.Sequential(
        nn.Linear(20, hidden), nn.ReLU(),
        nn.Linear(hidden, NUM_RATINGS),
    )


def load_reviews(n=1000):
    rng = np.random.default_rng(0)
    rating = rng.integers(1, NUM_RATINGS + 1, size=n)
    centers = rng.normal(size=(NUM_RATINGS + 1, 20))
    features = centers[rating] + 0.5 * rng.normal(size=(n, 20))
    return features.astype(np.float32), rating


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=64):
    features, rating = load_reviews()
    dataset = TensorDataset(torch.from_numpy(features), torch.from_numpy(rating))
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "num_classes": NUM_RATINGS,
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
