# EXPECT: label-out-of-range
# A churn classifier (stayed / churned) on synthetic customer records.
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ChurnModel(nn.Module):
    def __init__(self, in_features=12, hidden=32):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, 2),
        )

    def forward(self, x):
        return self.mlp(x)


def load_customers(n=800):
    rng = np.random.default_rng(0)
    records = rng.normal(size=(n, 12)).astype(np.float32)
    status = np.digitize(records[:, 0] + 0.5 * records[:, 1], [-0.5, 0.5])
    return records, status


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    records, status = load_customers()
    dataset = TensorDataset(torch.from_numpy(records), torch.from_numpy(status).long())
    return {
        "model": lambda: ChurnModel(hidden=hidden),
        "train_loader": DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
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
