"""Every split is probed as training is: validation and test batches through the model before anything trains."""

from __future__ import annotations

import pytest

from dldoctor.core.errors import ExitCode
from dldoctor.core.runner import RunOptions, diagnose
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage

SPEC = """\
g = torch.Generator().manual_seed(0)
X = torch.randn(200, 8, generator=g)
y = (X[:, 0] > 0).long() + (X[:, 1] > 1).long()
{held_out}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "{split}_loader": DataLoader(TensorDataset(Xh, yh), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""

SAME = "Xh = torch.randn(70, 8, generator=g)\nyh = (Xh[:, 0] > 0).long()"  # a last batch of 6; labels {0, 1}
WIDER = "Xh = torch.randn(64, 10, generator=g)\nyh = (Xh[:, 0] > 0).long()"
DOUBLE = "Xh = torch.randn(64, 8, generator=g).double()\nyh = (Xh[:, 0] > 0).long()"
LABELS = "Xh = torch.randn(64, 8, generator=g)\nyh = (Xh[:, 0] > 0).long() * 4"
HANGS = """\
import time
from torch.utils.data import Dataset

class Slow(Dataset):
    def __len__(self):
        return 64
    def __getitem__(self, index):
        time.sleep(3600)

Xh = yh = None
"""


def run(make_project, held_out: str, split: str = "val", stages=None, deadline=None):
    body = SPEC.format(held_out=held_out, split=split)
    if held_out is HANGS:
        body = body.replace("DataLoader(TensorDataset(Xh, yh), batch_size=32)", "DataLoader(Slow(), batch_size=32)")
    path = make_project(body)
    overrides = (("run.batch_deadline_s", deadline),) if deadline else ()
    return diagnose(RunOptions(target=str(path), device="cpu", stages=stages, overrides=overrides))


def alarms(diagnosis):
    return [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]


def skipped(diagnosis) -> dict[str, str]:
    return {c.name: c.reason for c in diagnosis.checks if c.status.value == "skipped"}


def test_a_validation_loader_of_another_input_width_is_an_error_naming_the_split(make_project):
    diagnosis = run(make_project, WIDER)
    top = alarms(diagnosis)[0]
    assert top.id == "shape-mismatch" and top.severity.value == "error" and top.check == "held-out-splits"
    assert top.title.startswith("val_loader: ") and top.location == "val_loader"
    assert "the val_loader's inputs are [*, 10], training's [*, 8]" in top.evidence
    assert top.metrics["train_shape"] == "[*, 8]" and top.metrics["split_shape"] == "[*, 10]"
    assert "val_loader" in top.fixes[0] and "[*, 8]" in top.fixes[0]
    # The checks that read the split are skipped with the reason, not crashed into check-incomplete.
    assert not [f for f in diagnosis.diagnoses if f.id == "check-incomplete"]
    reasons = skipped(diagnosis)
    assert "held-out-splits found that the val_loader" in reasons["baselines"]
    assert "held-out-splits found that the val_loader" in reasons["bias-variance"]
    assert diagnosis.exit_code(FailOn.ERROR) is ExitCode.FINDINGS


def test_validation_labels_outside_the_models_classes_are_an_error(make_project):
    diagnosis = run(make_project, LABELS, stages=(Stage.RUN,))
    [top] = alarms(diagnosis)
    assert top.id == "label-out-of-range" and top.severity.value == "error"
    assert top.title == "val_loader: labels {4} occur but the model outputs only 3 classes (0..2)"
    assert top.location == "val_loader" and top.metrics["classes"] == 3
    assert any("training's labels are {0, 1, 2}" in e for e in top.evidence)


def test_a_test_loader_is_probed_too(make_project):
    diagnosis = run(make_project, DOUBLE, split="test", stages=(Stage.RUN,))
    [top] = alarms(diagnosis)
    assert top.id == "dtype-mismatch" and top.title.startswith("test_loader: ") and top.location == "test_loader"
    assert "the test_loader's inputs are float64, training's float32" in top.evidence


def test_a_healthy_validation_loader_stays_silent(make_project):
    """Same shapes, a last partial batch of another size, labels a subset of training's."""
    diagnosis = run(make_project, SAME, stages=(Stage.RUN, Stage.COMPARE))
    assert not alarms(diagnosis), [f"{f.id}: {f.title}" for f in alarms(diagnosis)]
    status = {c.name: c.status.value for c in diagnosis.checks}
    assert status["held-out-splits"] == "passed" and status["baselines"] in ("passed", "failed")


def test_a_hung_validation_loader_is_fatal_and_its_checks_are_skipped_with_the_reason(make_project):
    diagnosis = run(make_project, HANGS, deadline=1.0, stages=(Stage.RUN, Stage.COMPARE, Stage.EVALUATE))
    [hang] = [f for f in diagnosis.diagnoses if f.id == "check-incomplete"]
    assert hang.check == "held-out-splits" and hang.metrics["fatal"] is True
    assert "the val_loader produced no batch" in hang.title and "__getitem__(index=0)" in hang.title
    reasons = skipped(diagnosis)
    assert reasons["baselines"].startswith("the val_loader hangs (")
    assert reasons["bias-variance"].startswith("the val_loader hangs (")
    assert diagnosis.exit_code(FailOn.NEVER) is ExitCode.USAGE


DICT_SPEC = """\
from torch.utils.data import Dataset

class Records(Dataset):
    def __init__(self, n, length):
        g = torch.Generator().manual_seed(n)
        self.x = torch.randint(0, 50, (n, length), generator=g)
        self.y = (self.x[:, 0] > 25).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {{"tokens": self.x[i], "label": self.y[i]}}

class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, tokens):
        return self.head(self.embed(tokens).mean(1))

def dldoctor_spec():
    return {{
        "model": Bag,
        "train_loader": DataLoader(Records(128, 12), batch_size=32),
        "val_loader": DataLoader(Records(64, {length}), batch_size=32),
        "forward": lambda model, batch: (model(batch["tokens"]), batch["label"]),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""


@pytest.mark.parametrize("length,expected", [(12, None), (20, "shape-mismatch")])
def test_dict_batches_behind_a_custom_forward_are_compared_by_key(make_project, length, expected):
    """A model that accepts another sequence length still runs: the difference is a warning."""
    path = make_project(DICT_SPEC.format(length=length))
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", stages=(Stage.RUN,)))
    found = [f for f in alarms(diagnosis) if f.check == "held-out-splits"]
    if expected is None:
        assert not found, [f.title for f in found]
    else:
        [finding] = found
        assert finding.id == expected and finding.severity.value == "warning"
        assert finding.title == "val_loader: batch['tokens'] are [*, 20] where training's are [*, 12]"
