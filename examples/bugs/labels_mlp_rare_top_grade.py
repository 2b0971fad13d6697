# EXPECT: label-out-of-range
# An MLP that grades weld defects on a 1-4 severity scale from 12 synthetic sensor features.
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

NUM_GRADES = 4


def make_model(hidden=32):
    return nn.Sequential(
        nn.Linear(12, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, NUM_GRADES),
    )


def load_inspections(n=900, seed=5):
    rng = np.random.default_rng(seed)
    grade = rng.choice([1, 2, 3, 4], size=n, p=[0.45, 0.35, 0.18, 0.02])
    centers = rng.normal(size=(NUM_GRADES + 1, 12))
    features = centers[grade] + 0.7 * rng.normal(size=(n, 12))
    return features.astype(np.float32), grade


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=32):
    features, grade = load_inspections()
    dataset = TensorDataset(torch.from_numpy(features), torch.from_numpy(grade))
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
