# EXPECT: healthy
# ARGS: --epochs 3
"""Digits classifier with a conventional main(): argparse, a train and an evaluate
function, a best-accuracy tracker, everything under `if __name__ == "__main__":`.

Tempts a false alarm only through its shape: nothing trains at import time, the
command-line arguments decide the run, and the loop lives two calls deep. The loop
itself is textbook (train mode, zero_grad, backward, step; eval under no_grad).
"""
import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def parse_args():
    parser = argparse.ArgumentParser(description="Train an MLP on the 8x8 digits.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def train(model, loader, optimizer):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    return total / len(loader.dataset)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    hits = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
    return hits / len(loader.dataset)


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=args.seed, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    def make(a, b):
        return TensorDataset(torch.tensor(scaler.transform(a), dtype=torch.float32), torch.tensor(b))
    train_loader = DataLoader(make(X_tr, y_tr), batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(make(X_va, y_va), batch_size=256)

    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        loss = train(model, train_loader, optimizer)
        acc = evaluate(model, val_loader)
        best = max(best, acc)
        print(f"epoch {epoch}/{args.epochs}  train_loss {loss:.4f}  val_acc {acc:.4f}  best {best:.4f}")


if __name__ == "__main__":
    main()
