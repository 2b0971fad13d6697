# EXPECT: healthy
# An LSTM that classifies noisy synthetic sine waves by frequency, with a logit-norm penalty in the loss.
# The penalty gives the loss a floor (it stops near 0.91, far from zero) while every sample of the
# batch is classified right: the batch is fitted, and no failed fit may be reported.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveClassifier(nn.Module):
    def __init__(self, hidden_size=32, num_classes=4):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def make_loss(penalty=1.0):
    def loss_fn(logits, targets):
        return F.cross_entropy(logits, targets) + penalty * logits.pow(2).mean()
    return loss_fn


def make_dataset(n=1024, steps=30):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    t = torch.arange(steps, dtype=torch.float32)
    freq = 0.15 + 0.12 * labels.float().view(-1, 1)
    phase = torch.rand(n, 1, generator=g) * 6.28
    waves = torch.sin(freq * t + phase) + 0.2 * torch.randn(n, steps, generator=g)
    return TensorDataset((waves / waves.std()).unsqueeze(-1), labels)


def dldoctor_spec(lr=1e-2, penalty=1.0, batch_size=64):
    return {
        "model": WaveClassifier,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": make_loss(penalty),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
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
