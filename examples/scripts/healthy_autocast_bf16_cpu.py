# EXPECT: healthy
"""Digits CNN trained under CPU autocast in bfloat16.

Tempts `numerical-instability` / a missing-GradScaler alarm: the forward pass runs in
bfloat16 and no loss scaling is done. bfloat16 has float32's exponent range, so
gradients do not underflow and a GradScaler is neither needed nor used (it exists for
float16 on CUDA); the weights and the optimizer stay in float32.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def run_epoch(model, loader, optimizer, criterion):
    model.train()
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(images)
            loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
    return total / len(loader.dataset)


if __name__ == "__main__":
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X.reshape(-1, 1, 8, 8) / 16.0, dtype=torch.float32)
    X = (X - X.mean()) / X.std()
    x_tr, x_va, y_tr, y_va = train_test_split(X, torch.tensor(y), test_size=0.2, random_state=0)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True)

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(6):
        loss = run_epoch(model, loader, optimizer, criterion)
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            acc = (model(x_va).argmax(1) == y_va).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss:.4f}, val accuracy {acc:.3f}")
