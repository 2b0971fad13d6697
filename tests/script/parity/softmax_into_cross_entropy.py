"""A small CNN on scikit-learn's 8x8 digits whose model ends in nn.Softmax, trained with
nn.CrossEntropyLoss (which wants logits): examples/bugs/probs_cnn_softmax_crossentropy.py
written as an ordinary script with a module-level loop."""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = (X / 16.0 - 0.5) / 0.5
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
train = TensorDataset(torch.tensor(X_train, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y_train))
val = TensorDataset(torch.tensor(X_val, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y_val))
train_loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(val, batch_size=256)

model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(32 * 2 * 2, 64), nn.ReLU(),
    nn.Linear(64, 10),
    nn.Softmax(dim=1),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(10):
    model.train()
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in val_loader)
    print(f"epoch {epoch}: loss {loss.item():.4f}  val accuracy {correct / len(val):.3f}")
