"""Stage 2 on tiny models: each experiment's verdict, and silence on models that fit."""

import pytest

from tests.conftest import diagnose_file

BASE = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
W = torch.randn(8, 3, generator=g)
y = (X @ W).argmax(1)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3){extra_layers})

    def forward(self, x):
        return self.body(x)

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: {optimizer},
    }}
"""


def project(make_project, optimizer, loss="nn.CrossEntropyLoss()", extra_layers=""):
    return make_project(BASE.format(optimizer=optimizer, loss=loss, extra_layers=extra_layers))


def top(diagnosis):
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    return alarms[0] if alarms else None


STAGE2 = ("overfit-batch", "gradient-dynamics", "label-signal")


def test_a_model_that_fits_passes_without_experiments(make_project):
    measurements = {}
    from dldoctor.core.runner import RunOptions, diagnose

    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)")
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", select=STAGE2), measurements=measurements)
    assert top(diagnosis) is None
    curves = [k for k in measurements if k.startswith("overfit:") and "lr_scale" in k]
    assert len(curves) == 1, curves  # the baseline only


def test_lr_too_high_is_confirmed_by_a_smaller_lr(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=30.0)"), select=STAGE2))
    assert finding.id == "lr-too-high"
    assert any("with lr x0.1" in e or "with lr x0.01" in e for e in finding.evidence)
    assert finding.metrics["fixed_lr"] < 30.0


def test_lr_too_low_is_confirmed_by_a_larger_lr(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=1e-4)"), select=STAGE2))
    assert finding.id == "lr-too-low"
    assert finding.metrics["fixed_lr"] > 1e-4


def test_sign_flip_is_confirmed_by_minimising_the_negated_loss(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=0.1, maximize=True)"),
                                select=STAGE2))
    assert finding.id == "loss-sign-flipped"
    assert any("negated loss" in e for e in finding.evidence)


def test_over_regularization_is_confirmed_with_decay_off(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.AdamW(p, lr=1e-2, weight_decay=50.0)"),
                                select=STAGE2))
    assert finding.id == "over-regularization"


def test_model_too_small_fits_few_samples_but_not_the_batch(make_project):
    path = make_project(BASE.format(optimizer="torch.optim.Adam(p, lr=1e-2)", loss="nn.CrossEntropyLoss()",
                                    extra_layers="").replace("nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)",
                                                             "nn.Linear(8, 1), nn.Linear(1, 3)")
                        .replace("W = torch.randn(8, 3, generator=g)\ny = (X @ W).argmax(1)",
                                 "y = torch.randint(0, 3, (256,), generator=g)"))
    finding = top(diagnose_file(path, select=("overfit-batch",)))
    assert finding.id == "model-too-small"


def test_labels_that_do_not_depend_on_inputs(make_project):
    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)").read_text().replace(
        "y = (X @ W).argmax(1)", "y = (X @ W).argmax(1)[torch.randperm(256, generator=g)]")
    from pathlib import Path
    target = make_project(path.split("from torch.utils.data import DataLoader, TensorDataset\n", 1)[1],
                          name="labels_train.py")
    finding = top(diagnose_file(target, select=STAGE2))
    assert finding.id == "labels-corrupted"
    assert finding.metrics["loss_real_labels"] >= 0.9 * finding.metrics["loss_permuted_labels"]
