"""The forward-pass check: each ID it emits on a tiny model, and silence on healthy ones."""

import pytest

from dldoctor.core.stage import Stage
from dldoctor.readings.crash import classify_message
from tests.conftest import HEALTHY_BODY, diagnose_file

LOADER = """
g = torch.Generator().manual_seed(0)
X = {x}
y = {y}

def dldoctor_spec():
    return {{
        "model": lambda: {model},
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=16),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.SGD(p, lr=0.1),
        {extra}
    }}
"""

CASES = {
    "unflattened-cnn": dict(
        x="torch.randn(64, 1, 8, 8, generator=g)", y="torch.randint(0, 10, (64,), generator=g)",
        model="nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(256, 10))",
        loss="nn.CrossEntropyLoss()", extra="", expect="shape-mismatch", location="model[2]",
        fix="flatten"),
    "wrong-in-channels": dict(
        x="torch.randn(64, 1, 8, 8, generator=g)", y="torch.randint(0, 10, (64,), generator=g)",
        model="nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))",
        loss="nn.CrossEntropyLoss()", extra="", expect="shape-mismatch", location="model[0]",
        fix="in_channels=1"),
    "batch-size-in-loss": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 3, (64,), generator=g)",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()",
        extra='"forward": lambda m, b: (m(b[0]), b[1][:8]),', expect="shape-mismatch", location="loss",
        fix="batch dimension"),
    "uint8-images": dict(
        x="torch.randint(0, 256, (64, 1, 8, 8), generator=g).to(torch.uint8)",
        y="torch.randint(0, 10, (64,), generator=g)",
        model="nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 10))",
        loss="nn.CrossEntropyLoss()", extra="", expect="dtype-mismatch", location="model[0]", fix="255"),
    "float-class-targets": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 3, (64,), generator=g).float()",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()", extra="", expect="dtype-mismatch",
        location="loss", fix=".long()"),
    "labels-one-based": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.arange(64) % 3 + 1",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()", extra="", expect="label-out-of-range",
        location="loss", fix="start at 0"),
    "hard-coded-cuda": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 3, (64,), generator=g)",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()",
        extra='"forward": lambda m, b: (m(b[0].to("cuda")), b[1]),', expect="device-mismatch",
        location="spec forward", fix="device"),
    "logits-into-bce": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 2, (64, 1), generator=g).float()",
        model="nn.Linear(6, 1)", loss="nn.BCELoss()", extra="", expect="loss-input-probabilities",
        location="loss", fix=""),
    # A crash inside a binary cross-entropy is named by its contract (targets are probabilities
    # of the output's shape), whatever torch's message is about: values, shape or dtype.
    "class-ids-into-bce": dict(
        x="torch.randn(64, 6, generator=g)", y="(torch.arange(64) % 4).float().view(-1, 1)",
        model="nn.Sequential(nn.Linear(6, 1), nn.Sigmoid())", loss="nn.BCELoss()", extra="",
        expect="label-out-of-range", location="data", fix="4-wide last layer"),
    "flat-class-ids-into-bce-with-logits": dict(
        x="torch.randn(64, 6, generator=g)", y="(torch.arange(64) % 5).float()",
        model="nn.Linear(6, 1)", loss="nn.BCEWithLogitsLoss()", extra="",
        expect="label-out-of-range", location="data", fix="nn.CrossEntropyLoss"),
    "long-class-ids-into-bce": dict(
        x="torch.randn(64, 6, generator=g)", y="(torch.arange(64) % 3).view(-1, 1)",
        model="nn.Sequential(nn.Linear(6, 1), nn.Sigmoid())", loss="nn.BCELoss()", extra="",
        expect="label-out-of-range", location="data", fix="long targets"),
    "probabilities-of-another-shape-into-bce": dict(
        x="torch.randn(64, 6, generator=g)", y="(torch.arange(64) % 2).float()",
        model="nn.Sequential(nn.Linear(6, 1), nn.Sigmoid())", loss="nn.BCELoss()", extra="",
        expect="shape-mismatch", location="loss", fix="view_as"),
    "binary-long-targets-into-bce-with-logits": dict(
        x="torch.randn(64, 6, generator=g)", y="(torch.arange(64) % 2).view(-1, 1)",
        model="nn.Linear(6, 1)", loss="nn.BCEWithLogitsLoss()", extra="",
        expect="dtype-mismatch", location="loss", fix="float"),
    "detached-output": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 3, (64,), generator=g)",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()",
        extra='"forward": lambda m, b: (m(b[0]).detach(), b[1]),', expect="no-gradient-flow",
        location="backward", fix="detach"),
    "unknown-user-error": dict(
        x="torch.randn(64, 6, generator=g)", y="torch.randint(0, 3, (64,), generator=g)",
        model="nn.Linear(6, 3)", loss="nn.CrossEntropyLoss()",
        extra='"forward": lambda m, b: (m(b[0]), {}["targets"]),', expect="entrypoint-error",
        location="spec forward", fix="traceback"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_crash_is_classified_and_localised(make_project, name):
    case = CASES[name]
    if case["expect"] == "device-mismatch":
        import torch
        if torch.cuda.is_available():
            pytest.skip("a hard-coded CUDA device is not a bug where CUDA exists")
    path = make_project(LOADER.format(**case))
    diagnosis = diagnose_file(path, stages=(Stage.RUN,))
    top = diagnosis.diagnoses[0]
    assert top.id == case["expect"], top
    assert top.rank == 1 and top.severity.value == "error"
    assert top.location == case["location"]
    assert case["fix"].lower() in " ".join(top.fixes).lower()
    assert any(e.startswith("torch said:") for e in top.evidence)
    checks = {c.name: c.status.value for c in diagnosis.checks}
    assert checks["forward-pass"] == "failed"


def test_a_contract_crash_keeps_what_torch_said_and_the_other_reading(make_project):
    path = make_project(LOADER.format(**CASES["flat-class-ids-into-bce-with-logits"]))
    top = diagnose_file(path, select=("forward-pass",)).diagnoses[0]
    assert "{0, 1, 2, 3, 4}" in top.title and "BCEWithLogitsLoss" in top.title
    assert top.metrics["target_min"] == 0 and top.metrics["target_max"] == 4
    assert top.metrics["torch_verdict"] == "dtype-mismatch"
    assert any("looks like a dtype problem" in e for e in top.evidence)
    assert any("Target size" in e for e in top.evidence if e.startswith("torch said:"))


def test_the_shape_trace_names_the_modules_before_the_crash(make_project):
    path = make_project(LOADER.format(**CASES["unflattened-cnn"]))
    top = diagnose_file(path, select=("forward-pass",)).diagnoses[0]
    trace = next(e for e in top.evidence if e.startswith("shapes before the crash"))
    assert "model[0] (Conv2d) [16, 1, 8, 8] -> [16, 4, 8, 8]" in trace
    assert "in_features expects 256 = 4*8*8" in top.fixes[0]
    assert top.metrics["input_shape"] == "[16, 4, 8, 8]" and top.metrics["in_features"] == 256


@pytest.mark.parametrize("body", [
    HEALTHY_BODY,
    HEALTHY_BODY.replace("return self.fc2(torch.relu(self.fc1(x)))",
                         "return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)")
                .replace("nn.CrossEntropyLoss()", "nn.NLLLoss()"),
    HEALTHY_BODY.replace("y = (X[:, 0] > 0).long()", "y = X[:, :2].sum(1)")
                .replace("nn.Linear(16, 2)", "nn.Linear(16, 1)")
                .replace("return self.fc2(torch.relu(self.fc1(x)))",
                         "return self.fc2(torch.relu(self.fc1(x))).squeeze(1)")
                .replace("nn.CrossEntropyLoss()", "nn.MSELoss()"),
])
def test_healthy_models_are_silent(make_project, body):
    diagnosis = diagnose_file(make_project(body), select=("forward-pass",))
    assert diagnosis.diagnoses == ()
    assert {c.name: c.status.value for c in diagnosis.checks}["forward-pass"] == "passed"


@pytest.mark.parametrize("exc,message,expected", [
    ("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (64x256 and 400x120)", "shape-mismatch"),
    ("RuntimeError", "Expected all tensors to be on the same device, but found at least two devices",
     "device-mismatch"),
    ("RuntimeError", "mat1 and mat2 must have the same dtype, but got Double and Float", "dtype-mismatch"),
    ("IndexError", "Target 10 is out of bounds.", "label-out-of-range"),
    ("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", "out-of-memory"),
    ("RuntimeError", "shape '[-1, 400]' is invalid for input of size 1000", "shape-mismatch"),
    ("KeyError", "'label'", None),
    ("RuntimeError", "Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same",
     "device-mismatch"),
    ("RuntimeError", "Input type (unsigned char) and bias type (float) should be the same", "dtype-mismatch"),
])
def test_message_fallback(exc, message, expected):
    assert classify_message(exc, message) == expected
