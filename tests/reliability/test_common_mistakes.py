"""The common mistakes of a first training script, each named with the change to make.

Spec-contract violations (a loss class for a loss, a model that returns a container
without a spec ``forward``, a loss that returns no tensor or no scalar) are fatal
``entrypoint-error`` findings (exit 2); data problems (text labels, ``[N, 1]`` class
targets) keep a crash ID (exit 1). Each has a healthy control that must stay silent.
"""

from __future__ import annotations

import re

import pytest

from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from tests.conftest import diagnose_file, run_cli

DATA = """
g = torch.Generator().manual_seed(0)
X = torch.randn(64, 6, generator=g)
y = torch.randint(0, 3, (64,), generator=g)
y[:3] = torch.tensor([0, 1, 2])
"""

SPEC = """
def dldoctor_spec():
    return {{
        "model": {model},
        "train_loader": {loader},
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.SGD(p, lr=0.1),
        {extra}
    }}
"""

LINEAR = "lambda: nn.Linear(6, 3)"
PAIRS = "DataLoader(TensorDataset(X, y), batch_size=16)"

DICT_MODEL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return {"hidden": h, "logits": self.head(h)}
"""

TUPLE_MODEL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 3)
        self.aux = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(x), self.aux(x)
"""

MODEL_OUTPUT = """
import collections
import dataclasses
from typing import Optional


@dataclasses.dataclass
class SequenceClassifierOutput(collections.OrderedDict):
    # what a HuggingFace model returns: a dict subclass and a dataclass, None fields left out
    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    hidden_states: Optional[torch.Tensor] = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is not None:
                self[field.name] = getattr(self, field.name)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return SequenceClassifierOutput(logits=self.head(h), hidden_states=h)
"""

TEXT_LABELS = """
class Records(Dataset):
    names = ["cat", "dog", "bird"]

    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return X[i], self.names[int(y[i])]
"""


def project(make_project, *, model=LINEAR, loader=PAIRS, loss="nn.CrossEntropyLoss()", extra="", before=""):
    body = DATA + before + SPEC.format(model=model, loader=loader, loss=loss, extra=extra)
    return make_project(body, header="import numpy as np\nimport torch\nfrom torch import nn\n"
                                     "from torch.utils.data import DataLoader, Dataset, TensorDataset\n")


def run_stage_one(path):
    return diagnose_file(path, stages=(Stage.RUN,))


def top_alarm(diagnosis):
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    assert alarms, diagnosis.diagnoses
    return alarms[0]


def line_at(path, location: str) -> str:
    """The source line a ``file:line`` location points to."""
    name, _, line = location.partition(":")
    assert name == path.name, location
    return path.read_text().splitlines()[int(line) - 1]


def text(finding) -> str:
    return " ".join((finding.title, *finding.evidence, *finding.fixes))


def assert_traceback_when_referred(finding):
    """A fix that sends the user to a traceback comes with that traceback."""
    if any("traceback" in f.lower() for f in finding.fixes):
        assert any(e.startswith("Traceback (your code") for e in finding.evidence), finding


def assert_no_internal_traceback(proc):
    out = proc.stdout + proc.stderr
    assert "Traceback (most recent call last)" not in out, out
    assert not re.search(r'File "[^"]*dldoctor/', out), out


# -- a class where an instance is expected -------------------------------------------------
@pytest.mark.parametrize("loss,written", [
    ("nn.CrossEntropyLoss", "nn.CrossEntropyLoss()"),
    ("SmoothedLoss", "SmoothedLoss()"),
])
def test_a_loss_class_is_named_at_spec_validation(make_project, loss, written):
    before = """
class SmoothedLoss(nn.Module):
    def forward(self, outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, label_smoothing=0.1)
"""
    diagnosis = run_stage_one(project(make_project, loss=loss, before=before))
    (finding,) = diagnosis.diagnoses
    assert finding.id == "entrypoint-error" and finding.location
    assert f"is the class {loss}" in finding.title and written in finding.title
    assert f'"loss_fn": {written},' in finding.fixes[0]
    assert diagnosis.checks == ()  # found before anything ran
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 2


def test_a_loss_class_on_the_command_line(make_project):
    proc = run_cli("probe", project(make_project, loss="nn.CrossEntropyLoss"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'loss_fn' is the class nn.CrossEntropyLoss" in proc.stderr
    assert '"loss_fn": nn.CrossEntropyLoss(),' in proc.stderr
    assert_no_internal_traceback(proc)


def test_a_loss_factory_that_takes_no_arguments_is_named(make_project):
    (finding,) = run_stage_one(project(make_project, loss="lambda: nn.CrossEntropyLoss()")).diagnoses
    assert finding.id == "entrypoint-error"
    assert "loss_fn(outputs, targets)" in finding.title and "takes no arguments" in finding.title


def test_a_loss_instance_of_the_users_class_is_fine(make_project):
    before = """
class SmoothedLoss(nn.Module):
    def forward(self, outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, label_smoothing=0.1)
"""
    diagnosis = diagnose_file(project(make_project, loss="SmoothedLoss()", before=before), select=("forward-pass",))
    assert diagnosis.diagnoses == ()


# -- labels that are not numbers ------------------------------------------------------------
def test_text_labels_are_a_dtype_mismatch_named_in_the_dataset(make_project):
    path = project(make_project, loader="DataLoader(Records(), batch_size=16)", before=TEXT_LABELS)
    diagnosis = run_stage_one(path)
    finding = top_alarm(diagnosis)
    assert finding.id == "dtype-mismatch"
    assert "targets are strings" in finding.title and "'cat'" in finding.title and "not class indices" in finding.title
    assert "self.classes = sorted(set(labels))" in finding.fixes[0] and "self.classes.index(label)" in finding.fixes[0]
    assert not any("float32" in f or "Flatten" in f for f in finding.fixes)  # no general fixes of other causes
    assert "def __getitem__" in line_at(path, finding.location)
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 1


def test_numeric_text_labels_get_int(make_project):
    before = TEXT_LABELS.replace('["cat", "dog", "bird"]', '["0", "1", "2"]')
    path = project(make_project, loader="DataLoader(Records(), batch_size=16)", before=before)
    finding = top_alarm(run_stage_one(path))
    assert finding.id == "dtype-mismatch" and "int(label)" in finding.fixes[0]


def test_text_labels_that_a_custom_loss_maps_itself_are_fine(make_project):
    before = TEXT_LABELS + """
def named_loss(outputs, names):
    index = torch.tensor([Records.names.index(n) for n in names])
    return nn.functional.cross_entropy(outputs, index)
"""
    path = project(make_project, loader="DataLoader(Records(), batch_size=16)", before=before, loss="named_loss")
    diagnosis = diagnose_file(path, select=("forward-pass",))
    assert diagnosis.diagnoses == ()


# -- a model output that is a dict, a tuple or a ModelOutput -----------------------------------
def test_a_dict_output_asks_for_the_forward_key_with_its_logits(make_project):
    path = project(make_project, model="Net", before=DICT_MODEL)
    diagnosis = run_stage_one(path)
    finding = top_alarm(diagnosis)
    assert finding.id == "entrypoint-error"
    assert "returns a dict" in finding.title and "'logits' [16, 3]" in finding.title
    assert "'hidden' [16, 8]" in finding.title and "no 'forward'" in finding.title
    assert '"forward": lambda model, batch: (model(batch[0])["logits"], batch[1]),' in finding.fixes[0]
    assert "def forward" in line_at(path, finding.location)
    assert any("raised TypeError" in e for e in finding.evidence)
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 2
    # the step stopped there: no check reads a tensor the model did not return
    assert [f.id for f in diagnosis.diagnoses if f.severity.value != "info"] == ["entrypoint-error"]


def test_a_dict_output_on_the_command_line(make_project):
    proc = run_cli("probe", project(make_project, model="Net", before=DICT_MODEL))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "returns a dict" in proc.stderr and "'logits'" in proc.stderr
    assert '"forward": lambda model, batch: (model(batch[0])["logits"], batch[1])' in proc.stderr
    assert_no_internal_traceback(proc)


def test_a_huggingface_style_model_output_gets_its_logits_key(make_project):
    finding = top_alarm(run_stage_one(project(make_project, model="Net", before=MODEL_OUTPUT)))
    assert finding.id == "entrypoint-error"
    assert "returns a SequenceClassifierOutput" in finding.title and "'logits' [16, 3]" in finding.title
    assert '(model(batch[0])["logits"], batch[1])' in finding.fixes[0]


def test_a_tuple_output_into_cross_entropy(make_project):
    finding = top_alarm(run_stage_one(project(make_project, model="Net", before=TUPLE_MODEL)))
    assert finding.id == "entrypoint-error"
    assert "returns a tuple (2 items: [0] [16, 3], [1] [16, 1])" in finding.title
    # measured, not guessed: only [0] is shaped like class scores for targets in 0..2
    assert '"forward": lambda model, batch: (model(batch[0])[0], batch[1]),' in finding.fixes[0]
    assert "guess" not in finding.fixes[0]


def test_a_tuple_that_a_custom_loss_takes_is_caught_without_a_crash(make_project):
    before = TUPLE_MODEL + """
def loss_with_aux(outputs, targets):
    logits, aux = outputs
    return nn.functional.cross_entropy(logits, targets) + 0.01 * aux.pow(2).mean()
"""
    diagnosis = run_stage_one(project(make_project, model="Net", before=before, loss="loss_with_aux"))
    finding = top_alarm(diagnosis)
    assert finding.id == "entrypoint-error" and "returns a tuple" in finding.title
    assert "on purpose" in finding.fixes[0]
    assert '"forward": lambda model, batch: (model(batch[0]), batch[1]),' in finding.fixes[0]
    assert [f.id for f in diagnosis.diagnoses if f.severity.value != "info"] == ["entrypoint-error"]
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 2


def test_the_prediction_entry_is_found_by_shape(make_project):
    before = """
yf = X[:, 0] * 2.0

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return {"features": h, "value": self.head(h).squeeze(1)}
"""
    finding = top_alarm(run_stage_one(project(make_project, model="Net", before=before, loss="nn.MSELoss()",
                                              loader="DataLoader(TensorDataset(X, yf), batch_size=16)")))
    assert finding.id == "entrypoint-error"
    assert '(model(batch[0])["value"], batch[1])' in finding.fixes[0]


def test_a_forward_without_return(make_project):
    before = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        logits = self.head(x)
"""
    finding = top_alarm(run_stage_one(project(make_project, model="Net", before=before)))
    assert finding.id == "entrypoint-error" and "returns None" in finding.title
    assert "return" in finding.fixes[0]


def test_a_dict_output_with_a_forward_key_is_fine(make_project):
    extra = '"forward": lambda model, batch: (model(batch[0])["logits"], batch[1]),'
    diagnosis = diagnose_file(project(make_project, model="Net", before=DICT_MODEL, extra=extra),
                              select=("forward-pass",))
    assert diagnosis.diagnoses == ()


def test_a_spec_forward_that_hands_the_loss_a_dict_is_named(make_project):
    extra = '"forward": lambda model, batch: (model(batch[0]), batch[1]),'
    finding = top_alarm(run_stage_one(project(make_project, model="Net", before=DICT_MODEL, extra=extra)))
    assert finding.id == "entrypoint-error" and finding.location == "spec forward"
    assert "spec's forward returns a dict" in finding.title and '["logits"]' in finding.fixes[0]
    assert all("traceback" not in f.lower() for f in finding.fixes)


# -- a loss that does not reduce to a scalar, or returns no tensor --------------------------------
def test_reduction_none_names_the_shape_and_the_reduction(make_project):
    diagnosis = run_stage_one(project(make_project, loss="nn.CrossEntropyLoss(reduction='none')"))
    finding = top_alarm(diagnosis)
    assert finding.id == "entrypoint-error" and finding.location == "loss"
    assert "[16] tensor (one loss per sample), not a scalar" in finding.title
    assert "reduction='mean'" in finding.fixes[0] and ".mean()" in finding.fixes[0]
    assert "nn.CrossEntropyLoss(reduction='none')" in finding.fixes[0]
    assert not any("flatten" in f.lower() or "convolution" in f.lower() for f in finding.fixes)
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 2


def test_reduction_none_on_the_command_line(make_project):
    proc = run_cli("probe", project(make_project, loss="nn.CrossEntropyLoss(reduction='none')"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a scalar" in proc.stderr and "reduction='mean'" in proc.stderr
    assert_no_internal_traceback(proc)


def test_a_custom_unreduced_loss_is_told_to_call_mean(make_project):
    before = """
def per_sample(outputs, targets):
    return nn.functional.cross_entropy(outputs, targets, reduction="none")
"""
    path = project(make_project, loss="per_sample", before=before)
    finding = top_alarm(run_stage_one(path))
    assert finding.id == "entrypoint-error" and "not a scalar" in finding.title
    assert "return loss.mean()" in finding.fixes[0]
    assert "def per_sample" in line_at(path, finding.location)


def test_a_loss_returning_a_float_is_named(make_project):
    before = """
def logged_loss(outputs, targets):
    return nn.functional.cross_entropy(outputs, targets).item()
"""
    path = project(make_project, loss="logged_loss", before=before)
    diagnosis = run_stage_one(path)
    finding = top_alarm(diagnosis)
    assert finding.id == "entrypoint-error"
    assert finding.title.startswith("loss_fn returned a float (")
    assert "it must return a tensor with its graph" in finding.title
    assert ".item()" in finding.fixes[0] and "float()" in finding.fixes[0]
    assert "def logged_loss" in line_at(path, finding.location)
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 2


def test_a_loss_returning_numpy_is_named(make_project):
    loss = "lambda o, t: nn.functional.cross_entropy(o, t).detach().numpy()"
    finding = top_alarm(run_stage_one(project(make_project, loss=loss)))
    assert finding.id == "entrypoint-error" and "not a tensor" in finding.title and ".numpy()" in finding.fixes[0]


def test_a_loss_returning_a_tuple_is_told_to_return_the_loss_alone(make_project):
    before = """
def loss_and_accuracy(outputs, targets):
    loss = nn.functional.cross_entropy(outputs, targets)
    return loss, (outputs.argmax(1) == targets).float().mean()
"""
    finding = top_alarm(run_stage_one(project(make_project, loss="loss_and_accuracy", before=before)))
    assert finding.id == "entrypoint-error" and "returned a tuple" in finding.title
    assert '"loss_fn": lambda outputs, targets: loss_and_accuracy(outputs, targets)[0],' in finding.fixes[0]


@pytest.mark.parametrize("loss", [
    "nn.CrossEntropyLoss(reduction='sum')",
    "lambda o, t: nn.functional.cross_entropy(o, t).reshape(())",
    "lambda o, t: nn.functional.cross_entropy(o, t, reduction='none').mean()",
])
def test_scalar_losses_are_fine(make_project, loss):
    diagnosis = diagnose_file(project(make_project, loss=loss), select=("forward-pass",))
    assert diagnosis.diagnoses == ()


# -- targets with a trailing singleton dimension -----------------------------------------------
@pytest.mark.parametrize("loss,name", [
    ("nn.CrossEntropyLoss()", "cross-entropy"),
    ("lambda o, t: nn.functional.nll_loss(o.log_softmax(1), t)", "the loss"),
])
def test_n_by_1_class_targets_are_a_shape_mismatch(make_project, loss, name):
    path = project(make_project, loss=loss, loader="DataLoader(TensorDataset(X, y[:, None]), batch_size=16)")
    diagnosis = run_stage_one(path)
    finding = top_alarm(diagnosis)
    assert finding.id == "shape-mismatch"
    assert finding.title == f"targets have a trailing singleton dimension [16, 1]; {name} wants [16]"
    assert "targets.squeeze(1)" in finding.fixes[0] and "y.view(-1)" in finding.fixes[0]
    assert not any("flatten" in f.lower() for f in finding.fixes)
    assert finding.location
    assert int(diagnosis.exit_code(FailOn.ERROR)) == 1


def test_n_by_1_float_targets_into_mse_are_left_to_loss_broadcast(make_project):
    before = """
yf = X[:, :1] * 2.0

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 1)

    def forward(self, x):
        return self.fc(x).squeeze(1)
"""
    path = project(make_project, model="Net", before=before, loss="nn.MSELoss()",
                   loader="DataLoader(TensorDataset(X, yf), batch_size=16)")
    diagnosis = diagnose_file(path, select=("forward-pass", "loss-broadcast"))
    assert [f.id for f in diagnosis.diagnoses if f.severity.value != "info"] == ["loss-broadcast"]


# -- the user's traceback wherever a fix refers to it -------------------------------------------
def test_an_error_in_the_users_loss_carries_their_traceback(make_project):
    before = """
def my_loss(outputs, targets):
    weights = {"a": 1.0}
    return nn.functional.cross_entropy(outputs, targets) * weights["b"]
"""
    finding = top_alarm(run_stage_one(project(make_project, loss="my_loss", before=before)))
    assert finding.id == "entrypoint-error"
    assert any("traceback" in f.lower() for f in finding.fixes)
    tb = next(e for e in finding.evidence if e.startswith("Traceback (your code"))
    assert "my_loss" in tb and "KeyError" in tb
    assert_traceback_when_referred(finding)


def test_no_fix_refers_to_a_traceback_the_finding_lacks(make_project):
    # a crash inside torch with no line of the user's code: nothing to read below
    loss = "nn.MultiLabelMarginLoss()"
    finding = top_alarm(run_stage_one(project(make_project, loss=loss)))
    assert_traceback_when_referred(finding)
    assert not any(e.startswith("Traceback") for e in finding.evidence)


@pytest.mark.parametrize("kwargs", [
    dict(loss="nn.CrossEntropyLoss(reduction='none')"),
    dict(model="Net", before=DICT_MODEL),
    dict(loss="lambda o, t: float(nn.functional.cross_entropy(o, t))"),
    dict(loader="DataLoader(Records(), batch_size=16)", before=TEXT_LABELS),
    dict(loader="DataLoader(TensorDataset(X, y[:, None]), batch_size=16)"),
])
def test_every_new_finding_is_localised_and_self_contained(make_project, kwargs):
    finding = top_alarm(run_stage_one(project(make_project, **kwargs)))
    assert finding.location and finding.fixes
    assert_traceback_when_referred(finding)
