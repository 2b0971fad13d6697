# EXPECT: exploding-gradients
# ALSO: lr-too-high
# A hand-written Elman RNN cell that estimates the drift of synthetic random-walk sensor readings (regression).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ElmanRegressor(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(1, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.hidden_size)
        for t in range(x.shape[1]):
            h = torch.relu(self.inp(x[:, t]) + self.rec(h))
        return self.out(h).squeeze(-1)


def make_dataset(n=1024, steps=80):
    g = torch.Generator().manual_seed(0)
    drift = torch.randn(n, 1, generator=g)
    readings = 0.3 * drift + torch.randn(n, steps, generator=g)
    return TensorDataset((readings / readings.std()).unsqueeze(-1), drift.squeeze(1) / drift.std())


def dldoctor_spec(lr=0.05, batch_size=64):
    return {
        "model": ElmanRegressor,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.MSELoss(),
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
