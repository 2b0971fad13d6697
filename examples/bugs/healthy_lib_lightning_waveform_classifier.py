# EXPECT: healthy
"""A Lightning LightningModule (1-D CNN) classifying synthetic waveforms, used through the spec.

Signals of 64 samples are a sine, a square or a sawtooth wave with random frequency,
phase and amplitude plus Gaussian noise; the label is the wave's shape. The
LightningModule defines the network (two Conv1d + BatchNorm + ReLU blocks, global
average pooling, linear head), its `training_step`, `validation_step` and
`configure_optimizers` as one would for `Trainer.fit`; the spec hands dldoctor the
module itself as the model (its forward returns logits) and the same optimiser recipe.

Why healthy: the three shapes differ clearly in their local slope pattern, the inputs are
roughly unit scale: a plain loop goes from 1/3 to above 95% validation accuracy in 300 steps,
and `Trainer.fit` on the same module reaches about 95% in 5 epochs.
"""
import math

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

LENGTH, SHAPES = 64, 3


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    shape = torch.randint(0, SHAPES, (n,), generator=g)
    freq = 1.0 + 3.0 * torch.rand(n, 1, generator=g)
    phase = torch.rand(n, 1, generator=g)
    amp = 0.5 + torch.rand(n, 1, generator=g)
    t = torch.linspace(0, 1, LENGTH)
    cycle = (freq * t + phase) % 1.0
    waves = torch.stack([torch.sin(2 * math.pi * cycle), torch.sign(torch.sin(2 * math.pi * cycle)), 2 * cycle - 1])
    x = amp * waves[shape, torch.arange(n)] + 0.2 * torch.randn(n, LENGTH, generator=g)
    return TensorDataset(x.unsqueeze(1), shape)


class WaveformClassifier(L.LightningModule):
    def __init__(self, channels=16, lr=3e-3):
        super().__init__()
        self.lr = lr
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, padding=2), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2), nn.BatchNorm1d(channels), nn.ReLU(),
        )
        self.head = nn.Linear(channels, SHAPES)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def dldoctor_spec(lr=3e-3, batch_size=64, channels=16):
    return {
        "model": lambda: WaveformClassifier(channels, lr),
        "train_loader": DataLoader(make_data(2000, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(500, 1), batch_size=250),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
