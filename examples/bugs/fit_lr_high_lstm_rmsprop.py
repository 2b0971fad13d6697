# EXPECT: lr-too-high
# An LSTM that classifies noisy synthetic sine waves by frequency (4 classes), trained with RMSprop.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveClassifier(nn.Module):
    def __init__(self, hidden_size=48, num_classes=4):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def make_dataset(n=1024, steps=40):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    freq = 0.15 + 0.12 * labels.float().view(-1, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    waves = torch.sin(freq * t + phase) + 0.2 * torch.randn(n, steps, generator=g)
    waves = waves / waves.std()
    return TensorDataset(waves.unsqueeze(-1), labels)


def dldoctor_spec(lr=0.1, batch_size=64):
    return {
        "model": WaveClassifier,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.RMSprop(params, lr=lr),
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
