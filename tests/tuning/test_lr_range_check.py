"""The lr-range check: a spec learning rate 10x off a confident range test, in --profile thorough only."""

import pytest
import torch

from tests.conftest import REPO, diagnose_file
from tests.tuning.helpers import DATA

SPEC = DATA + """

def dldoctor_spec():
    train, val = loaders()
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)),
        "train_loader": train, "val_loader": val, "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: {optimizer},
    }}
"""


def lr_findings(make_project, optimizer, profile="thorough"):
    path = make_project(SPEC.format(optimizer=optimizer))
    diagnosis = diagnose_file(path, profile=profile, select=("lr-range",))
    return diagnosis, [f for f in diagnosis.diagnoses if f.id in ("lr-too-low", "lr-too-high")]


def test_a_learning_rate_far_below_the_descent_is_too_low(make_project):
    diagnosis, [finding] = lr_findings(make_project, "torch.optim.Adam(p, lr=1e-6)")
    assert finding.id == "lr-too-low" and finding.severity.value == "warning" and finding.location == "optimizer"
    assert finding.metrics["spec_lr"] == 1e-6 and finding.metrics["suggested_lr"] > 1e-4
    assert finding.metrics["sweep_steps"] <= 100  # the budget
    assert "barely moved the loss" in finding.evidence[0]
    assert diagnosis.reports["lr_range"]["reading"]["status"] == "clear"


def test_a_learning_rate_beyond_the_minimum_is_too_high(make_project):
    _, [finding] = lr_findings(make_project, "torch.optim.SGD(p, lr=200.0)")
    assert finding.id == "lr-too-high"
    assert finding.metrics["spec_lr"] > 10 * finding.metrics["suggested_lr"]


@pytest.mark.parametrize("optimizer", ["torch.optim.Adam(p, lr=3e-3)", "torch.optim.SGD(p, lr=0.1, momentum=0.9)"])
def test_healthy_learning_rates_are_silent(make_project, optimizer):
    diagnosis, findings = lr_findings(make_project, optimizer)
    assert findings == []
    assert diagnosis.reports["lr_range"]["reading"]["suggestion"] is not None


def test_outside_the_thorough_profile_it_does_not_run(make_project):
    diagnosis, findings = lr_findings(make_project, "torch.optim.Adam(p, lr=1e-6)", profile="standard")
    assert findings == [] and "lr_range" not in diagnosis.reports


def test_a_curve_without_a_minimum_gives_no_verdict(make_project):
    # Batch-normalised logits: the loss falls, then stays flat up to the largest rates.
    body = SPEC.replace("nn.Linear(32, 2))", "nn.Linear(32, 2, bias=False), nn.BatchNorm1d(2, affine=False))")
    path = make_project(body.format(optimizer="torch.optim.SGD(p, lr=1e-5, momentum=0.9)"))
    diagnosis = diagnose_file(path, profile="thorough", select=("lr-range",))
    assert diagnosis.reports["lr_range"]["reading"]["status"] == "none"
    assert [f.id for f in diagnosis.diagnoses] == []


def test_the_sweep_leaves_the_users_model_and_random_streams_alone(make_project):
    body = SPEC.replace('"model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)),',
                        '"model": MODEL,')
    body = body.replace("def dldoctor_spec", "MODEL = nn.Linear(8, 2)\nINITIAL = MODEL.weight.detach().clone()\n\n"
                                             "def dldoctor_spec")
    path = make_project(body.format(optimizer="torch.optim.SGD(p, lr=1.0)"))
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    diagnosis = diagnose_file(path, profile="thorough", select=("lr-range",))
    assert torch.equal(torch.random.get_rng_state(), state)
    import sys

    module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(path.resolve()))
    assert torch.equal(module.MODEL.weight, module.INITIAL)
    assert diagnosis.reports["lr_range"]["sweep"]["losses"]


ZOO = REPO / "examples" / "bugs"


@pytest.mark.slow
@pytest.mark.parametrize("path", [
    REPO / "examples" / "digits" / "train.py", REPO / "examples" / "transformer" / "train.py",
    ZOO / "healthy_fit_slow_momentum.py", ZOO / "healthy_fit_transformer_warmup.py", ZOO / "healthy_fit_bn_cnn.py",
    ZOO / "healthy_deep_mlp_kaiming.py", ZOO / "healthy_iris_mlp.py",
], ids=lambda p: p.stem)
def test_shipped_healthy_models_get_no_verdict(path):
    diagnosis = diagnose_file(path, profile="thorough", select=("lr-range",))
    assert diagnosis.reports["lr_range"]["sweep"]["losses"]
    assert [f.id for f in diagnosis.diagnoses] == []


@pytest.mark.slow
@pytest.mark.parametrize("name,expected", [
    ("fit_lr_low_cnn_adam.py", "lr-too-low"), ("fit_lr_low_mlp_sgd.py", "lr-too-low"),
    ("fit_lr_low_transformer_adamw.py", "lr-too-low"), ("fit_lr_high_cnn_adam.py", "lr-too-high"),
])
def test_the_zoos_learning_rate_bugs_are_confirmed(name, expected):
    diagnosis = diagnose_file(ZOO / name, profile="thorough", select=("lr-range",))
    assert [f.id for f in diagnosis.diagnoses] == [expected]
