# EXPECT: healthy
# An MLP on synthetic customer records: standardised numeric columns next to one-hot and yes/no columns.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PLANS = 5


def make_dataset(n=2000):
    g = torch.Generator().manual_seed(0)
    age = 40 + 12 * torch.randn(n, generator=g)
    spend = torch.exp(3 + 0.5 * torch.randn(n, generator=g))
    plan = torch.randint(0, PLANS, (n,), generator=g)
    has_app = (torch.rand(n, generator=g) < 0.1).float()
    score = 0.04 * (age - 40) + 0.03 * (spend - 20) + 0.6 * (plan == 3).float() + 1.5 * has_app
    label = (score + 0.1 * torch.randn(n, generator=g) > 0.3).long()
    numeric = torch.stack([age, spend], dim=1)
    numeric = (numeric - numeric.mean(0)) / numeric.std(0)
    features = torch.cat([numeric, nn.functional.one_hot(plan, PLANS).float(), has_app[:, None]], dim=1)
    return TensorDataset(features, label)


def dldoctor_spec(lr=1e-2, hidden=64, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(2 + PLANS + 1, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
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
