# EXPECT: healthy
# STAGES: run, overfit, evaluate
# An MLP regressor on 240 synthetic sensor readings (5 inputs; a smooth target plus
# heavy-tailed Student-t noise, as outliers in field measurements give), validated on
# the 30 readings that follow. After the short run its relative MSE (MSE over the target
# variance) is 0.106 on training data and 0.239 on validation: a gap of 0.13. An MSE
# over 30 samples has a relative standard error of at least sqrt(2/30) = 26% (exactly
# that for Gaussian residuals, more with heavy tails), so the gap is 2.1 standard errors
# (0.062) and could be as small as 0.008. On 11 other draws of the same data the
# validation error ranged from 0.07 to 0.22 for the same model: an ordinary gap for 30
# validation samples, not over-fitting. The noise level is known (the sensors' data
# sheet): a variance of 0.125 against 1.3 for the raw target, so the spec gives an
# irreducible relative MSE of 0.10.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n=270, seed=7):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    signal = torch.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.8 * X[:, 3]
    chi2 = torch.randn(n, 4, generator=g).pow(2).sum(1)
    noise = torch.randn(n, generator=g) / torch.sqrt(chi2 / 4)  # Student t, 4 degrees of freedom
    y = signal + 0.25 * noise
    y = (y - y.mean()) / y.std()
    return X, y.unsqueeze(1)


def dldoctor_spec(lr=3e-3, hidden=64):
    X, y = make_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, 1)),
        "train_loader": DataLoader(TensorDataset(X[:240], y[:240]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[240:], y[240:]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "irreducible_error": 0.10,
    }
