# EXPECT: shape-mismatch
"""Churn classifier on synthetic customer records: training runs, evaluation crashes.

Each split one-hot encodes its own "plan" column (np.unique per split, as
pd.get_dummies does): the validation customers happen to use only four of the five
plans, so their rows have one column fewer than the model was built for.
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def customers(n, plans, seed):
    rng = np.random.default_rng(seed)
    usage = rng.normal(size=(n, 6)).astype(np.float32)
    plan = rng.choice(plans, size=n)
    churned = ((usage[:, 0] + 0.8 * (plan == 4) - 0.5 * usage[:, 1]) > 0.4).astype(np.int64)
    return usage, plan, churned


def encode(usage, plan):
    levels = np.unique(plan)  # fitted on this split only
    onehot = (plan[:, None] == levels[None, :]).astype(np.float32)
    return torch.from_numpy(np.concatenate([usage, onehot], axis=1))


def load_splits():
    usage, plan, churned = customers(1200, [0, 1, 2, 3, 4], seed=0)
    v_usage, v_plan, v_churned = customers(300, [0, 1, 2, 3], seed=1)
    train = TensorDataset(encode(usage, plan), torch.from_numpy(churned))
    val = TensorDataset(encode(v_usage, v_plan), torch.from_numpy(v_churned))
    return train, val


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    train, val = load_splits()
    return {
        "model": lambda: nn.Sequential(nn.Linear(11, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            for x, y in spec["val_loader"]:
                print(f"epoch {epoch}: val loss {spec['loss_fn'](model(x), y).item():.4f}")
