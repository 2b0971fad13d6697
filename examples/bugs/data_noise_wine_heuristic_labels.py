# EXPECT: label-noise
"""Wine cultivar classifier that tops out far below what the chemistry should allow.

The cultivar labels of the training rows were filled in by a keyword heuristic
over the cellar notes, and it picks the wrong cultivar for about a quarter of them.
"""
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def load_data():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    mean, std = X_train.mean(0), X_train.std(0)
    X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    g = torch.Generator().manual_seed(2)
    y_guess = torch.tensor(y_train)
    wrong = torch.rand(len(y_guess), generator=g) < 0.25
    y_guess[wrong] = (y_guess[wrong] + torch.randint(1, 3, (int(wrong.sum()),), generator=g)) % 3
    train = TensorDataset(torch.tensor(X_train, dtype=torch.float32), y_guess)
    val = TensorDataset(torch.tensor(X_val, dtype=torch.float32), torch.tensor(y_val))
    return train, val


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=16):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, 3)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
