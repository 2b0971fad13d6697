# EXPECT: no-gradient-flow
# A GRU classifier on synthetic sensor sequences (which of 4 waveforms, with noise),
# fine-tuned by "layer-norm tuning": the loop keeps requires_grad only on parameters
# whose name contains "norm". The freshly added classifier is not named so and stays at
# its random initial weights; the GRU and the input projection are frozen too. Only the
# LayerNorm's 64 values of 6,628 train. Measured: the single batch does not fit as given,
# while the same fit with every parameter trainable (fresh copy, same seed, same 200
# steps) converges.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WaveGRU(nn.Module):
    def __init__(self, hidden=32, classes=4):
        super().__init__()
        self.proj = nn.Linear(2, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        _, h = self.gru(torch.tanh(self.proj(x)))
        return self.head(self.norm(h[-1]))


def make_model():
    model = WaveGRU()
    for name, p in model.named_parameters():
        p.requires_grad = "norm" in name
    return model


def make_dataset(n=512, steps=24):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    t = torch.linspace(0, 2 * math.pi, steps)
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    freq = (labels + 1).float().unsqueeze(1)
    wave = torch.sin(freq * t + phase)
    x = torch.stack([wave, torch.cos(freq * t + phase)], dim=2) + 0.1 * torch.randn(n, steps, 2, generator=g)
    return TensorDataset(x, labels)


def dldoctor_spec(lr=3e-3):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=64, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr),
    }
