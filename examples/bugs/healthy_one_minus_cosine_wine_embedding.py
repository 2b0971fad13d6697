# EXPECT: healthy
# The look-alike of a flipped cosine loss: an MLP on scikit-learn's wine data maps each
# wine to an 8-dimensional embedding of its cultivar (a fixed random vector per class),
# trained with 1 - cosine similarity. The loss is bounded like a similarity (0 to 2) and
# its value sits near 1 at initialisation, but it is 0 at a perfect prediction (outputs
# equal to the targets) and falls towards it, so the sign test stays silent and the
# single batch fits.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def cosine_distance(outputs, targets):
    return 1 - F.cosine_similarity(outputs, targets, dim=1).mean()


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    prototypes = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    return TensorDataset(torch.tensor(X, dtype=torch.float32), prototypes[torch.tensor(y)])


def dldoctor_spec(lr=3e-3, hidden=32, batch_size=32):
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 8)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": cosine_distance,
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
