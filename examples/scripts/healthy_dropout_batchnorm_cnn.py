# EXPECT: healthy
"""A digits CNN with BatchNorm2d, BatchNorm1d and dropout, trained correctly.

Tempts `wrong-mode` (dropout and batch norm behave differently in the validation
passes) and a loss-plateau alarm (with label_smoothing=0.05 the loss levels off near
0.3, its floor, not near 0). Neither is a bug: train() is set for every training
epoch, eval() and no_grad for every validation pass, and the model trains well.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ConvNet(nn.Module):
    def __init__(self, n_classes=10, p_drop=0.4):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                    nn.MaxPool2d(2), nn.Dropout2d(0.1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
                                  nn.Dropout(p_drop), nn.Linear(128, n_classes))

    def forward(self, x):
        return self.head(self.block2(self.block1(x)))


def train_one_epoch(model, loader, optimizer, criterion):
    model.train()
    loss_sum = correct = seen = 0
    for images, targets in loader:
        optimizer.zero_grad()
        logits = model(images)
        loss = criterion(logits, targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(targets)
        correct += (logits.argmax(1) == targets).sum().item()
        seen += len(targets)
    return loss_sum / seen, correct / seen


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
    return correct / len(loader.dataset)


if __name__ == "__main__":
    torch.manual_seed(0)
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target)
    x_tr, x_va, y_tr, y_va = train_test_split(images, labels, test_size=0.2, random_state=1, stratify=labels)
    train_loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True, drop_last=True)
    val_loader = DataLoader(TensorDataset(x_va, y_va), batch_size=128)

    model = ConvNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.05)
    for epoch in range(6):
        loss, train_acc = train_one_epoch(model, train_loader, optimizer, criterion)
        print(f"epoch {epoch + 1}: loss {loss:.3f} train_acc {train_acc:.3f} val_acc {evaluate(model, val_loader):.3f}")
