"""The eval-mode check: randomness at evaluation and the wrong mode in training; healthy models stay silent."""

import copy

import pytest
import torch
from torch import nn

from dldoctor.core.context import default_forward
from dldoctor.probes.determinism import is_mode_dependent, measure_determinism, relative_change
from tests.conftest import diagnose_file

BODY = """
import torch.nn.functional as F
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 6, generator=g)
y = torch.randint(0, 3, (96,), generator=g)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 3)
{init}

    def forward(self, x):
{forward}
{methods}

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }}
"""


def project(make_project, forward, init="", methods="", extra=""):
    def indent(s, n=8):
        return "\n".join(" " * n + line if line.strip() else line for line in s.strip().splitlines())

    return make_project(BODY.format(forward=indent(forward), init=indent(init) if init else "",
                                    methods=indent(methods, 4) if methods else "", extra=extra))


BUGS = {
    "functional-dropout-default": dict(
        forward="h = F.dropout(torch.relu(self.fc1(x)), 0.5)\nreturn self.fc2(h)",
        location="model", title="random", fix="training=self.training", severity="error"),
    "dropout-built-in-forward": dict(
        forward="return self.fc2(nn.Dropout(0.5)(torch.relu(self.fc1(x))))",
        location="model", title="Dropout built inside model.forward", fix="__init__", severity="error"),
    "noise-in-forward": dict(
        forward="h = torch.relu(self.fc1(x))\nreturn self.fc2(h + 0.1 * torch.randn_like(h))",
        location="model", title="between fc1 and fc2", fix="if self.training", severity="error"),
    "batch-norm-built-in-forward": dict(
        forward="return self.fc2(torch.relu(nn.BatchNorm1d(16)(self.fc1(x))))",
        location="model", title="BatchNorm1d built inside", fix="__init__", severity="error"),
    "forward-switches-to-eval": dict(
        init="self.drop = nn.Dropout(0.3)",
        forward="self.eval()\nreturn self.fc2(self.drop(torch.relu(self.fc1(x))))",
        location="drop", title="Training runs in eval mode", fix="Remove the .eval()", severity="error"),
    "spec-forward-switches-to-eval": dict(
        init="self.bn = nn.BatchNorm1d(16)",
        forward="return self.fc2(torch.relu(self.bn(self.fc1(x))))",
        extra='"forward": lambda m, b: (m.eval()(b[0]), b[1]),',
        location="bn", title="Training runs in eval mode", fix="spec's forward", severity="error"),
    "built-in-eval-mode": dict(
        init="self.drop = nn.Dropout(0.3)\nself.eval()",
        forward="return self.fc2(self.drop(torch.relu(self.fc1(x))))",
        location="drop", title="built in eval mode", fix="__init__", severity="warning"),
    "layer-built-in-forward": dict(
        forward="return nn.Linear(16, 3)(torch.relu(self.fc1(x)))",
        location="model", title="new random weights", fix="__init__", severity="warning"),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_wrong_mode_is_found_and_localised(make_project, name):
    case = BUGS[name]
    path = project(make_project, case["forward"], case.get("init", ""), extra=case.get("extra", ""))
    diagnosis = diagnose_file(path, select=("eval-mode",))
    assert [f.id for f in diagnosis.diagnoses] == ["wrong-mode"], diagnosis.diagnoses
    top = diagnosis.diagnoses[0]
    assert top.severity.value == case["severity"]
    assert top.location == case["location"]
    assert case["title"].lower() in top.title.lower(), top.title
    assert case["fix"].lower() in top.fixes[0].lower(), top.fixes[0]


HEALTHY = {
    "plain": dict(forward="return self.fc2(torch.relu(self.fc1(x)))"),
    "dropout-module": dict(init="self.drop = nn.Dropout(0.5)",
                           forward="return self.fc2(self.drop(torch.relu(self.fc1(x))))"),
    "functional-dropout-with-training-flag": dict(
        forward="return self.fc2(F.dropout(torch.relu(self.fc1(x)), 0.5, training=self.training))"),
    "noise-only-when-training": dict(
        forward="h = torch.relu(self.fc1(x))\nif self.training:\n    h = h + 0.1 * torch.randn_like(h)\n"
                "return self.fc2(h)"),
    "batch-norm-and-dropout": dict(
        init="self.bn = nn.BatchNorm1d(16)\nself.drop = nn.Dropout(0.2)",
        forward="return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))"),
    "frozen-batch-norm-by-overriding-train": dict(
        init="self.bn = nn.BatchNorm1d(16)",
        forward="return self.fc2(torch.relu(self.bn(self.fc1(x))))",
        methods="def train(self, mode=True):\n    super().train(mode)\n    self.bn.eval()\n    return self"),
    "frozen-block-kept-in-eval-by-forward": dict(
        init="self.backbone = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.2))\n"
             "self.backbone.requires_grad_(False)",
        forward="self.backbone.eval()\nreturn self.fc2(torch.relu(self.backbone(x)))"),
    "different-output-in-eval": dict(
        forward="out = self.fc2(torch.relu(self.fc1(x)))\nreturn out if self.training else out.log_softmax(1)"),
    "augmentation-in-the-spec-forward": dict(
        forward="return self.fc2(torch.relu(self.fc1(x)))",
        extra='"forward": lambda m, b: (m(b[0] + 0.05 * torch.randn_like(b[0])), b[1]),'),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_are_silent(make_project, name):
    case = HEALTHY[name]
    path = project(make_project, case["forward"], case.get("init", ""), case.get("methods", ""), case.get("extra", ""))
    diagnosis = diagnose_file(path, select=("eval-mode",))
    assert diagnosis.diagnoses == ()
    assert {c.name: c.status.value for c in diagnosis.checks}["eval-mode"] == "passed"


# -- the probe on its own --------------------------------------------------------------
class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.c(self.b(torch.nn.functional.dropout(self.a(x), 0.5)))


def test_probe_localises_between_submodules_and_cleans_up():
    torch.manual_seed(0)
    model = _Functional()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(16, 4), torch.zeros(16, dtype=torch.long))
    det = measure_determinism(lambda: copy.deepcopy(model).train(), model, batch, default_forward, 0, 1e-4)
    assert det.status == "measured" and det.eval_output_change > 0.1
    assert det.source.label == "model" and (det.source_after, det.source_before) == ("a", "b")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training
    assert not torch.nn.modules.module._global_forward_hooks and not torch.nn.modules.module._global_forward_pre_hooks


def test_probe_reports_a_crash_as_a_status():
    class Broken(nn.Module):
        def forward(self, x):
            if not self.training:
                raise RuntimeError("only trains")
            return x

    det = measure_determinism(Broken, Broken(), (torch.zeros(2, 2), None), default_forward, 0, 1e-4)
    assert det.status == "crashed" and "only trains" in det.reason


def test_mode_dependence_and_relative_change():
    assert is_mode_dependent(nn.Dropout(0.1)) and not is_mode_dependent(nn.Dropout(0.0))
    assert is_mode_dependent(nn.BatchNorm2d(3)) and not is_mode_dependent(nn.InstanceNorm2d(3))
    assert is_mode_dependent(nn.LSTM(2, 2, num_layers=2, dropout=0.2)) and not is_mode_dependent(nn.LSTM(2, 2))
    assert not is_mode_dependent(nn.LayerNorm(3))
    a = torch.ones(4)
    assert relative_change(a, a.clone()) == 0.0 and relative_change(a, a * 1.5) == pytest.approx(0.5)
    assert relative_change(a, torch.ones(5)) == float("inf")
    assert relative_change(torch.tensor([1, 2]), torch.tensor([1, 2])) == 0.0
