# EXPECT: device-mismatch
# A two-layer LSTM classifier on synthetic univariate time series.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LSTMClassifier(nn.Module):
    def __init__(self, input_size=1, hidden_size=64, num_layers=2, num_classes=3):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size, device="cuda")
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size, device="cuda")
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1])


def make_dataset(n=384, steps=40):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (n,), generator=g)
    t = torch.linspace(0, 1, steps)
    phase = torch.rand(n, 1, generator=g) * 6.28
    x = torch.sin(6.28 * (labels.view(-1, 1) + 1) * t + phase)
    x = x + 0.2 * torch.randn(n, steps, generator=g)
    return TensorDataset(x.unsqueeze(-1), labels)


def dldoctor_spec(lr=1e-3, batch_size=32):
    return {
        "model": LSTMClassifier,
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
