# EXPECT: loss-sign-flipped
"""Digits classifier written as "maximise the log-likelihood".

The author negates the cross-entropy to get the log-likelihood and then calls
backward() on it and steps a normal (minimising) optimizer: gradient descent on
minus the cross-entropy is gradient ascent on the cross-entropy, so the loss that is
printed goes up and up, and the accuracy stays at chance level.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler
from torch import nn


def batches(X, y, size, generator):
    order = torch.randperm(len(X), generator=generator)
    for i in range(0, len(X), size):
        idx = order[i:i + size]
        yield X[idx], y[idx]


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=3)
    scaler = MinMaxScaler().fit(X_tr)
    X_tr, X_te = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_te))
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)

    model = nn.Sequential(nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 10))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    for epoch in range(8):
        ce_sum, n = 0.0, 0
        for xb, yb in batches(X_tr, y_tr, 50, g):
            optimizer.zero_grad()
            log_likelihood = -criterion(model(xb), yb)
            log_likelihood.backward()
            optimizer.step()
            ce_sum += -log_likelihood.item() * len(xb)
            n += len(xb)
        with torch.no_grad():
            acc = (model(X_te).argmax(1) == y_te).float().mean().item()
        print(f"epoch {epoch}: cross-entropy {ce_sum / n:.3f}  test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
