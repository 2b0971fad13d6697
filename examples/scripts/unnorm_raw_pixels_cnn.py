# EXPECT: input-not-normalized
"""A CNN on 8x8 digit scans stored as 8-bit grey levels (0-255).

The uint8 images are converted with .float() but never divided by 255 (nor
standardised), so the network's inputs are in the hundreds: the first conv layer's
pre-activations are ~100x larger than its initialisation assumes, the first steps
produce huge gradients and a loss above chance, and training is erratic and ends well
behind the same model on standardised inputs.
"""
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ScanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


torch.manual_seed(0)
digits = load_digits()
scans = (digits.images * 255.0 / 16.0).round().astype(np.uint8)
x_tr, x_te, y_tr, y_te = train_test_split(scans, digits.target, test_size=0.2, random_state=0)
x_tr = torch.from_numpy(x_tr).unsqueeze(1).float()
x_te = torch.from_numpy(x_te).unsqueeze(1).float()
y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)
loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=32, shuffle=True)

model = ScanNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

for epoch in range(6):
    model.train()
    total, n = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)
        n += len(yb)
    model.eval()
    with torch.no_grad():
        acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    print(f"epoch {epoch + 1}: loss={total / n:.4f} test_acc={acc:.4f}")
