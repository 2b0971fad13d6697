# EXPECT: loss-sign-flipped
# A GRU that flags synthetic sensor sequences containing a burst, with a Bernoulli log-likelihood objective.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class BurstDetector(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.gru = nn.GRU(input_size=2, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1]).squeeze(-1)


def bernoulli_log_likelihood(logits, targets):
    return (targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits)).mean()


def make_dataset(n=1024, steps=30):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, steps, 2, generator=g)
    has_burst = torch.rand(n, generator=g) < 0.5
    start = torch.randint(0, steps - 5, (n,), generator=g)
    for i in torch.nonzero(has_burst).flatten():
        x[i, start[i]:start[i] + 5, 0] += 2.0
    return TensorDataset(x / x.std(), has_burst.float())


def dldoctor_spec(lr=3e-3, batch_size=64):
    return {
        "model": BurstDetector,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": bernoulli_log_likelihood,
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
