# EXPECT: memory-leak
"""A wide MLP on a synthetic 256-feature, 10-class problem, reporting the mean loss per epoch.

The epoch loss is accumulated with `epoch_loss += loss` instead of `loss.item()`.
`epoch_loss` is then a tensor that depends on every batch's loss, so it keeps the
autograd graph of every batch's loss alive until the end of the epoch: the graph
(and the memory it holds) grows with every step instead of being freed.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n_train=12800, n_val=2000, dim=256, n_classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_classes, dim, generator=g) * 0.15
    labels = torch.randint(0, n_classes, (n_train + n_val,), generator=g)
    x = centers[labels] + torch.randn(n_train + n_val, dim, generator=g)
    return (x[:n_train], labels[:n_train]), (x[n_train:], labels[n_train:])


class WideMLP(nn.Module):
    def __init__(self, dim=256, width=512, n_classes=10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, width), nn.GELU(),
            nn.Linear(width, width), nn.GELU(),
            nn.Linear(width, n_classes),
        )

    def forward(self, x):
        return self.layers(x)


def train_one_epoch(model, loader, optimizer, criterion):
    model.train()
    epoch_loss = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        epoch_loss += loss
    return epoch_loss / len(loader)


if __name__ == "__main__":
    torch.manual_seed(0)
    (x, y), (x_val, y_val) = make_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)
    model = WideMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(4):
        mean_loss = train_one_epoch(model, loader, optimizer, criterion)
        with torch.no_grad():
            acc = (model(x_val).argmax(1) == y_val).float().mean()
        print(f"epoch {epoch}: mean loss {mean_loss:.4f}, val acc {acc:.3f}")
