# EXPECT: healthy
"""Wine classifier whose loop clears gradients with zero_grad(set_to_none=False).

Tempts `stale-gradients` (the .grad tensors are never None, they always exist
between steps) and `no-gradient-flow` (they are all zeros right before each
backward()). Filling the existing buffers with zeros instead of freeing them is an
older but perfectly correct way of clearing the gradients.
"""
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(13, 48)
        self.fc2 = nn.Linear(48, 24)
        self.out = nn.Linear(24, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


def train_one_epoch(model, loader, optimizer, criterion):
    model.train()
    losses = []
    for features, labels in loader:
        optimizer.zero_grad(set_to_none=False)
        loss = criterion(model(features), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


if __name__ == "__main__":
    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=3, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_te))
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
    loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=16, shuffle=True)

    model = Net()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(10):
        loss = train_one_epoch(model, loader, optimizer, criterion)
        model.eval()
        with torch.no_grad():
            acc = (model(X_te).argmax(1) == y_te).float().mean().item()
        print(f"epoch {epoch + 1:2d}: loss={loss:.4f} test_acc={acc:.3f}")
