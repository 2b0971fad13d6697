# EXPECT: wrong-mode
"""Wine classifier with batch norm and dropout, validated after each epoch.

validate() never calls model.eval() and does not use torch.no_grad(): the validation
batches run with dropout still dropping half the units, so the reported accuracy is
noisy and too low, batch norm updates its running statistics from the validation
data, and an autograd graph is built for every validation batch for nothing.
"""
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WineClassifier(nn.Module):
    def __init__(self, n_features=13, hidden=64, n_classes=3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.5),
        )
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def validate(model, loader, criterion):
    total_loss, correct, count = 0.0, 0, 0
    for x, y in loader:
        out = model(x)
        total_loss += criterion(out, y).item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        count += len(y)
    return total_loss / count, correct / count


torch.manual_seed(0)
X, y = load_wine(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
train_ds = TensorDataset(torch.tensor(scaler.transform(X_train), dtype=torch.float32), torch.tensor(y_train))
val_ds = TensorDataset(torch.tensor(scaler.transform(X_val), dtype=torch.float32), torch.tensor(y_val))
train_loader = DataLoader(train_ds, batch_size=16, shuffle=True, drop_last=True)
val_loader = DataLoader(val_ds, batch_size=16)

model = WineClassifier()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(12):
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    val_loss, val_acc = validate(model, val_loader, criterion)
    print(f"epoch {epoch + 1:2d}: train loss {loss.item():.3f}  val loss {val_loss:.3f}  val acc {val_acc:.3f}")
