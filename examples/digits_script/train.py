"""A plain training script, as most are written: no dldoctor_spec, a main() with argparse.

    dldoctor run examples/digits_script/train.py -- --epochs 5

dldoctor runs it as `python train.py --epochs 5` would, watches its loop for a budget of
optimizer steps, stops it there, and runs every stage on the model, optimizer, loss and
loader it captured. Small CNN on scikit-learn's bundled 8x8 digits (no download).
"""
import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


def loaders(batch_size):
    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixels 0..16 -> 0..1
    X = (X - X.mean()) / X.std()
    y = torch.tensor(digits.target)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return (DataLoader(TensorDataset(X_tr, y_tr), batch_size=batch_size, shuffle=True),
            DataLoader(TensorDataset(X_va, y_va), batch_size=256))


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
    return correct / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader, val_loader = loaders(args.batch_size)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, validation accuracy {evaluate(model, val_loader):.3f}")


if __name__ == "__main__":
    main()
