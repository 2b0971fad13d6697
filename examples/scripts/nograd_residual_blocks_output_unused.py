# EXPECT: no-gradient-flow
"""A residual MLP for the 8x8 digits: a stem, three residual blocks, a linear head.

In forward() the residual update is written `x = h + block(h)` instead of
`h = h + block(h)`: the blocks' outputs are assigned to a variable that is never
read, so the head sees only the stem's features. The three blocks (most of the
network's weights) never receive a gradient and never train.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ResidualBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x):
        return self.net(x)


class ResMLP(nn.Module):
    def __init__(self, in_dim=64, dim=96, depth=3, n_classes=10):
        super().__init__()
        self.stem = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(ResidualBlock(dim) for _ in range(depth))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            x = h + block(h)
        return self.head(h)


def train_one_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total = 0.0
    for xb, yb in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)
    return total / len(loader.dataset)


if __name__ == "__main__":
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0)
    loader = DataLoader(TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr)), batch_size=64, shuffle=True)
    X_va, y_va = torch.from_numpy(X_va), torch.from_numpy(y_va)

    model = ResMLP()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(8):
        train_loss = train_one_epoch(model, loader, optimizer, loss_fn)
        model.eval()
        with torch.no_grad():
            val_acc = (model(X_va).argmax(-1) == y_va).float().mean().item()
        print(f"epoch {epoch}: train_loss={train_loss:.4f} val_acc={val_acc:.3f}")
