# EXPECT: dtype-mismatch
# An iris species classifier over records of (measurements, species name), as read from a CSV file.
import torch
from sklearn.datasets import load_iris
from torch import nn
from torch.utils.data import DataLoader, Dataset


class IrisRecords(Dataset):
    """One row per flower: four measurements in cm and the species' name."""

    def __init__(self):
        iris = load_iris()
        mean, std = iris.data.mean(0), iris.data.std(0)
        self.features = torch.tensor((iris.data - mean) / std, dtype=torch.float32)
        self.species = [str(iris.target_names[t]) for t in iris.target]

    def __len__(self):
        return len(self.species)

    def __getitem__(self, i):
        return self.features[i], self.species[i]


def make_model(hidden=32):
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def dldoctor_spec(lr=1e-2, hidden=32, batch_size=32):
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(IrisRecords(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
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
