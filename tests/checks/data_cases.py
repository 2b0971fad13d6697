"""Spec files for the data-check tests: a template and a runner for the data stage."""

from __future__ import annotations

from tests.conftest import diagnose_file

TEMPLATE = """
from torch.utils.data import SubsetRandomSampler, WeightedRandomSampler
g = torch.Generator().manual_seed(0)
{data}

def dldoctor_spec():
    return {{
        "model": lambda: {model},
        "train_loader": {train},
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }}
"""

MLP = "nn.Sequential(nn.Linear({d}, 16), nn.ReLU(), nn.Linear(16, {k}))"
TRAIN = "DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))"
VAL = '"val_loader": DataLoader(TensorDataset(Xv, yv), batch_size=128),'


def blobs(n: int, d: int, k: int, spread: float = 1.0, seed: int = 0, name: str = "") -> str:
    """Code for ``X{name}, y{name}``: n samples of k well-separated Gaussian classes in d dimensions."""
    return (f"C = torch.randn({k}, {d}, generator=torch.Generator().manual_seed(99)) * 3\n"
            f"gg = torch.Generator().manual_seed({seed})\n"
            f"y{name} = torch.randint(0, {k}, ({n},), generator=gg)\n"
            f"X{name} = C[y{name}] + {spread} * torch.randn({n}, {d}, generator=gg)\n")


def data_findings(make_project, data: str, diagnosis_id: str, *, model: str | None = None, d: int = 8,
                  k: int = 3, train: str = TRAIN, loss: str = "nn.CrossEntropyLoss()", extra: str = VAL,
                  **options):
    """The findings with ``diagnosis_id`` from the data stage on a spec built from the pieces."""
    from dldoctor.core.stage import Stage

    path = make_project(TEMPLATE.format(data=data, model=model or MLP.format(d=d, k=k), train=train, loss=loss,
                                        extra=extra))
    diagnosis = diagnose_file(path, stages=(Stage.DATA,), **options)
    return [f for f in diagnosis.diagnoses if f.id == diagnosis_id], diagnosis
