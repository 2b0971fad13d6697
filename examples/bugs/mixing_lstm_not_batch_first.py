# EXPECT: batch-mixing
# An LSTM that classifies noisy synthetic sine waves by frequency (3 classes).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SineClassifier(nn.Module):
    def __init__(self, hidden_size=32, num_classes=3):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, num_layers=1)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def make_dataset(n=600, steps=30):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    freq = 0.1 + 0.15 * labels.float().view(-1, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    x = torch.sin(freq * t + phase) + 0.1 * torch.randn(n, steps, generator=g)
    return TensorDataset(x.unsqueeze(-1), labels)


def dldoctor_spec(lr=1e-2, batch_size=32):
    return {
        "model": SineClassifier,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0), drop_last=True),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "num_classes": 3,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
