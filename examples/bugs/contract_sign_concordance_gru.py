# EXPECT: loss-sign-flipped
# A GRU tracks a continuous "arousal" rating along synthetic physiological sequences
# (one rating per time step), trained with the concordance correlation coefficient
# (CCC), the usual agreement measure in affect recognition. CCC is 1 for perfect
# agreement and lower for worse; it is returned as the loss without the "1 -", so
# training lowers the agreement. The sign test on the first batch: the loss is 1 at
# outputs equal to the targets, near 0 at the model's outputs and in between half-way,
# with a zero gradient at the perfect prediction (CCC's maximum): the objective is
# maximised by design and minimised by the optimiser, loss-sign-flipped.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ArousalTracker(nn.Module):
    def __init__(self, hidden_size=32):
        super().__init__()
        self.gru = nn.GRU(input_size=3, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out).squeeze(-1)


def concordance(predictions, targets):
    p_mean, t_mean = predictions.mean(), targets.mean()
    covariance = ((predictions - p_mean) * (targets - t_mean)).mean()
    return 2 * covariance / (predictions.var(unbiased=False) + targets.var(unbiased=False) + (p_mean - t_mean) ** 2)


def make_dataset(n=400, steps=50):
    g = torch.Generator().manual_seed(5)
    t = torch.arange(steps, dtype=torch.float32)
    arousal = torch.sin(0.15 * t + 6.28 * torch.rand(n, 1, generator=g)) * torch.rand(n, 1, generator=g)
    heart = arousal + 0.3 * torch.randn(n, steps, generator=g)
    skin = torch.cumsum(arousal, dim=1) / 10 + 0.3 * torch.randn(n, steps, generator=g)
    motion = 0.5 * torch.randn(n, steps, generator=g)
    return TensorDataset(torch.stack([heart, skin, motion], dim=-1), arousal)


def dldoctor_spec(lr=3e-3, hidden_size=32, batch_size=32):
    return {
        "model": lambda: ArousalTracker(hidden_size),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": concordance,
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
