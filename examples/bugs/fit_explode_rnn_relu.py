# EXPECT: exploding-gradients
# A single-layer ReLU RNN that classifies long noisy synthetic sine waves by frequency, SGD with momentum.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveRNN(nn.Module):
    def __init__(self, hidden_size=32, num_classes=4):
        super().__init__()
        self.rnn = nn.RNN(input_size=1, hidden_size=hidden_size, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def make_dataset(n=1024, steps=80):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    freq = 0.05 + 0.05 * labels.float().view(-1, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    waves = torch.sin(freq * t + phase) + 0.3 * torch.randn(n, steps, generator=g)
    return TensorDataset((waves / waves.std()).unsqueeze(-1), labels)


def dldoctor_spec(lr=0.1, batch_size=64):
    return {
        "model": WaveRNN,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
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
