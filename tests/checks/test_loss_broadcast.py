"""The loss-broadcast check: shapes that broadcast inside an element-wise loss, and matching shapes."""

import pytest

from dldoctor.checks.running.loss_broadcast import fixes_for, judge
from tests.conftest import diagnose_file

# torch itself warns once about the broadcast when the traced step runs the loss.
pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")

HEADER = """\
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
"""

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = X[:, :2].sum(1)
labels = (X[:, 0] > 0).long()

def mean_abs(pred, target):
    return (pred - target).abs().mean()

def dldoctor_spec():
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {width}){tail}),
        "train_loader": DataLoader(TensorDataset(X, {targets}), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""


def findings(make_project, width=1, tail="", targets="y", loss="nn.MSELoss()"):
    path = make_project(BODY.format(width=width, tail=tail, targets=targets, loss=loss), header=HEADER)
    diagnosis = diagnose_file(path, select=("loss-broadcast",))
    assert {c.name: c.status.value for c in diagnosis.checks}["loss-broadcast"] in ("passed", "failed")
    return [f for f in diagnosis.diagnoses if f.id == "loss-broadcast"]


TRIGGERS = {
    "mse-column-vs-vector": (dict(), "[32, 1]", "[32]", "outputs.squeeze(1)"),
    "l1-vector-vs-column": (dict(tail=", nn.Flatten(0)", targets="y.view(-1, 1)", loss="nn.L1Loss()"),
                            "[32]", "[32, 1]", "targets.view(-1)"),
    "huber-functional": (dict(loss="F.huber_loss"), "[32, 1]", "[32]", "outputs.squeeze(1)"),
    "lambda-squared-error": (dict(loss="lambda o, t: ((o - t) ** 2).mean()"), "[32, 1]", "[32]",
                             "outputs.squeeze(1)"),
    "custom-function": (dict(loss="mean_abs"), "[32, 1]", "[32]", "outputs.squeeze(1)"),
}


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_outer_broadcast_is_an_error_naming_both_shapes(make_project, name):
    kw, out, tgt, fix = TRIGGERS[name]
    found = findings(make_project, **kw)
    assert len(found) == 1
    f = found[0]
    assert f.severity.value == "error" and f.location == "loss"
    assert out in f.title and tgt in f.title and "[32, 32]" in f.title
    assert fix in f.fixes[0]
    assert f.metrics["broadcast_numel"] == 1024


def test_the_measurement_shows_the_loss_prefers_the_mean(make_project):
    f = findings(make_project, loss="lambda o, t: ((o - t) ** 2).mean()")[0]
    assert f.metrics["target_mixing"] > 0.1
    assert f.metrics["loss_at_perfect"] == pytest.approx(2 * f.metrics["loss_at_mean"], rel=1e-4)
    assert any("rewards the mean" in e for e in f.evidence)


def test_a_repeated_target_column_is_a_warning(make_project):
    found = findings(make_project, width=3, targets="y.view(-1, 1)")
    assert [f.severity.value for f in found] == ["warning"]
    assert "repeated 3 times" in found[0].evidence[0]


HEALTHY = {
    "column-vs-column": dict(targets="y.view(-1, 1)"),
    "vector-vs-vector": dict(tail=", nn.Flatten(0)"),
    "multi-output": dict(width=3, targets="X[:, :3] * 2"),
    "cross-entropy-class-indices": dict(width=2, targets="labels", loss="nn.CrossEntropyLoss()"),
    "lambda-that-squeezes": dict(loss="lambda o, t: ((o.squeeze(1) - t) ** 2).mean()"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_matching_shapes_are_silent(make_project, name):
    assert findings(make_project, **HEALTHY[name]) == []


# -- the pure judgement --------------------------------------------------------------

def test_judge_needs_an_elementwise_loss_or_a_measurement():
    assert judge((8, 1), (8,), True, None, False, 1e-3).case == "outer"
    assert judge((8, 1), (8,), False, None, False, 1e-3) is None
    assert judge((8, 1), (8,), False, 0.5, False, 1e-3).severity.value == "error"
    assert judge((8, 1), (8,), False, None, True, 1e-3).severity.value == "error"
    assert judge((8, 4), (8,), True, None, False, 1e-3) is None  # not broadcastable: a crash, not ours
    assert judge((8, 3), (8, 3), True, 1.0, True, 1e-3) is None
    assert judge((1, 1), (1,), True, None, False, 1e-3) is None  # a single sample cannot be told


def test_fixes_name_the_reshape():
    assert "outputs.squeeze(1)" in fixes_for((8, 1), (8,))[0]
    assert "targets.view(-1)" in fixes_for((8,), (8, 1))[0]
    assert "targets.view_as(outputs)" in fixes_for((8, 2), (2, 8, 1))[0]
