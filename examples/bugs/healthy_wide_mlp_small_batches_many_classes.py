# EXPECT: healthy
# STAGES: run, overfit
# A wide MLP (two hidden layers of 1024 units, 1.1M parameters) classifying synthetic
# sensor signatures into 20 device types (a prototype per type plus heavy noise), fed in
# batches of 8. One batch holds fewer samples than there are classes, so a model fitted to
# it predicts another batch at chance (0.0 vs 0.0); and a model this large memorises 4
# batches with shuffled labels as fast as with the real ones (loss 8.2e-5 real vs 8.0e-5
# shuffled), while at a tenth of the learning rate the real labels happen to win the race
# (0.028 vs 0.034): read as "the labels carry signal only at a lower rate", that was
# called lr-too-high. None of it says anything about the labels. Trained on 256 samples
# the real labels are learned 20x faster (loss 0.027 vs 0.59) and predict 256 held-out
# samples at 0.64 accuracy against 0.09 with shuffled labels: the labels carry signal,
# and the learning rate is fine.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

TYPES, CHANNELS, HIDDEN = 20, 64, 1024


def make_signatures(n, seed):
    g = torch.Generator().manual_seed(1)
    prototypes = torch.randn(TYPES, CHANNELS, generator=g)
    g.manual_seed(seed)
    device_type = torch.randint(0, TYPES, (n,), generator=g)
    readings = prototypes[device_type] + 2.5 * torch.randn(n, CHANNELS, generator=g)
    return TensorDataset(readings, device_type)


def dldoctor_spec(lr=1e-3):
    return {
        "model": lambda: nn.Sequential(nn.Linear(CHANNELS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                                       nn.Linear(HIDDEN, TYPES)),
        "train_loader": DataLoader(make_signatures(2000, 1), batch_size=8, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_signatures(400, 2), batch_size=128),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
