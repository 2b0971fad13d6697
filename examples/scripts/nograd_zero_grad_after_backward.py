# EXPECT: no-gradient-flow
"""A small CNN on the 8x8 digits, trained with Adam.

Inside the batch loop optimizer.zero_grad() sits between loss.backward() and
optimizer.step(): the gradients just computed are wiped (set to None) before the
optimizer can use them, so every step sees no gradient and the weights never move.
The loss stays at its starting value however long it trains.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(32 * 4 * 4, n_classes)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def train_one_epoch(model, loader, criterion, optimizer):
    model.train()
    total, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        total += loss.item() * labels.size(0)
        correct += (outputs.argmax(1) == labels).sum().item()
        seen += labels.size(0)
    return total / seen, correct / seen


torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
labels = torch.tensor(digits.target)
x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=42)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)

model = SmallCNN()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(1, 6):
    loss, acc = train_one_epoch(model, train_loader, criterion, optimizer)
    model.eval()
    with torch.no_grad():
        val_acc = (model(x_val).argmax(1) == y_val).float().mean().item()
    print(f"Epoch {epoch}: loss {loss:.4f}, train acc {acc:.3f}, val acc {val_acc:.3f}")
