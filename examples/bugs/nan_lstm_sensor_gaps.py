# EXPECT: numerical-instability
# An LSTM that classifies multichannel sensor recordings (3 activity classes); the logger marks dropouts.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CHANNELS, STEPS = 3, 40


class ActivityLSTM(nn.Module):
    def __init__(self, hidden_size=32, num_classes=3):
        super().__init__()
        self.lstm = nn.LSTM(CHANNELS, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[-1])


def make_dataset(n=600):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(STEPS, dtype=torch.float32).view(1, -1, 1)
    freq = (0.2 + 0.2 * labels.float()).view(-1, 1, 1)
    x = torch.sin(freq * t + torch.rand(n, 1, CHANNELS, generator=g) * 6.28)
    x = x + 0.1 * torch.randn(n, STEPS, CHANNELS, generator=g)
    dropout = torch.rand(n, STEPS, CHANNELS, generator=g) < 0.01
    x[dropout] = float("nan")
    return TensorDataset(x, labels)


def dldoctor_spec(lr=1e-2, batch_size=32):
    return {
        "model": ActivityLSTM,
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
