# EXPECT: loss-input-probabilities
"""A digits CNN whose model ends in nn.Softmax, trained with nn.CrossEntropyLoss.

CrossEntropyLoss expects raw logits and applies log-softmax itself. Fed
probabilities, it takes a softmax of values squeezed into [0, 1]: the loss can never
go below about 1.46, its gradients shrink as the model gets confident, and training
is much slower than with logits.
"""
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10),
        nn.Softmax(dim=1),
    )


def main():
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(digits.target, dtype=torch.long)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True)

    model = build_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(8):
        model.train()
        running_loss = 0.0
        for images, labels in loader:
            optimizer.zero_grad()
            probs = model(images)
            loss = criterion(probs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * images.size(0)
        model.eval()
        with torch.no_grad():
            test_acc = (model(x_te).argmax(dim=1) == y_te).float().mean().item()
        print(f"Epoch [{epoch + 1}/8] loss: {running_loss / len(x_tr):.4f} test_acc: {test_acc:.4f}")


if __name__ == "__main__":
    main()
