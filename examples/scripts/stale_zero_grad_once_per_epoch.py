# EXPECT: stale-gradients
"""Breast-cancer classifier with a train_one_epoch() helper.

optimizer.zero_grad() is called once at the top of the epoch instead of once per
batch, so within an epoch every backward() adds onto the gradients of all earlier
batches: the k-th step of an epoch applies the sum of k batch gradients, and the
steps get bigger and bigger as the epoch goes on.
"""
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train_one_epoch(model, loader, optimizer, loss_fn):
    model.train()
    optimizer.zero_grad()
    total = 0.0
    for x, y in loader:
        logits = model(x).squeeze(1)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return total / len(loader.dataset)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    return ((model(x).squeeze(1) > 0).float() == y).float().mean().item()


def main():
    torch.manual_seed(0)
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr = torch.tensor(scaler.transform(X_tr), dtype=torch.float32)
    X_te = torch.tensor(scaler.transform(X_te), dtype=torch.float32)
    y_tr = torch.tensor(y_tr, dtype=torch.float32)
    y_te = torch.tensor(y_te, dtype=torch.float32)
    loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=32, shuffle=True)

    model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()

    for epoch in range(8):
        train_loss = train_one_epoch(model, loader, optimizer, loss_fn)
        print(f"epoch {epoch}  train_loss={train_loss:.4f}  test_acc={evaluate(model, X_te, y_te):.3f}")


if __name__ == "__main__":
    main()
