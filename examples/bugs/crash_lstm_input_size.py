# EXPECT: shape-mismatch
# An LSTM classifier on synthetic multivariate sensor sequences (12 channels, 50 steps).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

NUM_FEATURES = 12
NUM_CLASSES = 4


class SequenceClassifier(nn.Module):
    def __init__(self, input_size=16, hidden_size=64, num_classes=NUM_CLASSES):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[-1])


def make_dataset(n=512, steps=50):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    freqs = (labels.float() + 1).view(n, 1, 1) * torch.linspace(1, 2, NUM_FEATURES)
    x = torch.sin(6.28 * freqs * t) + 0.3 * torch.randn(n, steps, NUM_FEATURES, generator=g)
    return TensorDataset(x, labels)


def dldoctor_spec(lr=1e-3, hidden_size=64, batch_size=32):
    return {
        "model": lambda: SequenceClassifier(hidden_size=hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
