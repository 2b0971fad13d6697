# EXPECT: too-little-data
# ALSO: overfitting
# A wide MLP (128 -> 1024 -> 1024 -> 8, 1.2M parameters) classifying 120 synthetic
# absorption spectra (128 wavelengths, 15 per compound, each spectrum a compound's two
# peaks buried in baseline drift and noise) into 8 compounds, validated on 400 other
# spectra: about 10,000 parameters per training sample. The short training run confirms
# the rule of thumb rather than overruling it: the network fits its 120 training spectra
# (training error 0.02-0.08 over the last epochs, the loss levelled off) while it gets
# more than half of the validation spectra wrong (0.58), a gap of 0.5 far beyond the
# noise of 400 validation samples. More spectra (or a far smaller model) is the fix.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

COMPOUNDS, WAVELENGTHS = 8, 128


def make_spectra(per_compound, seed):
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(COMPOUNDS, 2, generator=g) * WAVELENGTHS
    g.manual_seed(seed)
    labels = torch.arange(COMPOUNDS).repeat_interleave(per_compound)
    grid = torch.arange(WAVELENGTHS).float()
    peaks = torch.exp(-((grid - centres[labels, :1]) / 6) ** 2) + torch.exp(-((grid - centres[labels, 1:]) / 6) ** 2)
    drift = torch.randn(len(labels), 1, generator=g) * grid / WAVELENGTHS + torch.randn(len(labels), 1, generator=g)
    spectra = 0.5 * peaks + drift + 0.6 * torch.randn(len(labels), WAVELENGTHS, generator=g)
    return TensorDataset(spectra, labels)


def dldoctor_spec(lr=1e-3, hidden=1024):
    return {
        "model": lambda: nn.Sequential(nn.Linear(WAVELENGTHS, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, COMPOUNDS)),
        "train_loader": DataLoader(make_spectra(15, seed=1), batch_size=8, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_spectra(50, seed=2), batch_size=200),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
