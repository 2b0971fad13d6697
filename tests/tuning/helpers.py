"""A tiny, fast project for tuning tests: two Gaussian features decide the class."""

from __future__ import annotations

from dldoctor.core.runner import RunOptions
from dldoctor.tuning.session import TuneRequest, tune_target

DATA = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = ((X[:, 0] + X[:, 1]) > 0).long()
Xv = torch.randn(200, 8, generator=g)
yv = ((Xv[:, 0] + Xv[:, 1]) > 0).long()


def loaders(batch_size=32):
    return (DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(0)),
            DataLoader(TensorDataset(Xv, yv), batch_size=200))
"""

SPACE = '{"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "width": [4, 16, 64]}'

SPEC = DATA + """

def dldoctor_spec(lr={lr}, width=4):
    train, val = loaders()
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 2)),
        "train_loader": train,
        "val_loader": val,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=lr),
        "search_space": {space},
    }}
"""

#: Small budgets: 8 trials of 3 epochs in 2 rounds, the gain confirmed on 2 seeds.
FAST = (("tune.trials", 8), ("tune.rounds", 2), ("tune.epochs", 3), ("tune.confirm_seeds", 2))


def tiny_spec(lr: float = 1e-5, space: str = SPACE) -> str:
    return SPEC.format(lr=lr, space=space)


def tune_file(path, method="coarse-to-fine", storage=None, study=None, overrides=FAST, seed=0, lr_only=False):
    options = RunOptions(target=str(path), device="cpu", seed=seed, overrides=tuple(overrides))
    return tune_target(options, TuneRequest(lr_only=lr_only, method=method, storage=storage, study=study))
