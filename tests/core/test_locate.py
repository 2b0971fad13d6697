"""Source locations: the file and line of the user's code a finding points at."""

import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from dldoctor.core.finding import Finding
from dldoctor.core.locate import Sources, locate, module_path
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat, render
from dldoctor.render.github_report import display_file
from tests.conftest import REPO, diagnose_file

BUGS = REPO / "examples" / "bugs"

#: zoo case, the check that finds it, its diagnosis ID, what the pointed-at line must contain
CASES = [
    ("crash_cnn_wrong_in_features.py", "forward-pass", "shape-mismatch", "self.fc1("),  # the crashing call
    ("crash_lstm_input_size.py", "forward-pass", "shape-mismatch", "self.lstm("),
    ("crash_float64_inputs.py", "forward-pass", "dtype-mismatch", "nn.Linear(30, hidden)"),  # model[0]
    ("crash_labels_one_based.py", "forward-pass", "label-out-of-range", '"loss_fn"'),  # location: loss
    ("broadcast_mlp_diabetes_mse.py", "loss-broadcast", "loss-broadcast", '"loss_fn"'),
]
_ANNOTATION = re.compile(r"^::(error|warning) file=(?P<file>[^,]+),line=(?P<line>\d+),title=dldoctor (?P<id>[\w-]+)::")


@pytest.mark.zoo
@pytest.mark.parametrize("name,check,diagnosis_id,needle", CASES, ids=[c[0] for c in CASES])
def test_github_annotation_points_at_the_culprit_line(name, check, diagnosis_id, needle, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = BUGS / name
    diagnosis = diagnose_file(path, select=(check,), stages=(Stage.parse("run"),))
    lines = render(diagnosis, OutputFormat.GITHUB).splitlines()
    found = [m for m in map(_ANNOTATION.match, lines) if m and m.group("id") == diagnosis_id]
    assert found, lines
    assert found[0].group("file") == display_file(str(path))
    source = path.read_text().splitlines()
    line = int(found[0].group("line"))
    assert 1 <= line <= len(source)
    assert needle in source[line - 1], (line, source[line - 1])


def test_an_entrypoint_traceback_points_at_the_raising_line(make_project):
    path = make_project("""\
        def load_rows():
            raise FileNotFoundError("data/train.csv")

        def dldoctor_spec():
            return {"model": nn.Linear(2, 2), "train_loader": load_rows(), "loss_fn": nn.MSELoss(),
                    "optimizer": torch.optim.SGD}
        """)
    diagnosis = diagnose_file(path)
    (fatal,) = diagnosis.diagnoses
    assert fatal.id == "entrypoint-error"
    assert Path(fatal.file).resolve() == path.resolve()
    assert "raise FileNotFoundError" in path.read_text().splitlines()[fatal.line - 1]
    assert fatal.to_dict()["line"] == fatal.line


USER_MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Linear(4, 4),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(4, 2)


def make():
    return nn.Sequential(
        nn.Linear(3, 4),
        nn.Tanh(),
    )


build = lambda: make()  # noqa: E731


def dldoctor_spec():
    return {
        "model": Net,
        "loss_fn": nn.MSELoss(),
    }
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    import importlib.util
    import sys

    path = tmp_path / "usermodel.py"
    path.write_text(textwrap.dedent(USER_MODEL))
    spec = importlib.util.spec_from_file_location("usermodel_for_locate", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an imported user file is (inspect reads it there)
    spec.loader.exec_module(module)
    return path, module


def _line(path, finding):
    return path.read_text().splitlines()[finding.line - 1].strip() if finding.line else ""


@pytest.mark.parametrize("location,expected", [
    ("head", "self.head = nn.Linear(4, 2)"),
    ("stem.1", "nn.ReLU(),"),  # an element of the Sequential: its own line
    ("blocks.1.proj", "self.proj = nn.Linear(4, 4)"),  # assigned in the user's Block
    ("head.weight", "self.head = nn.Linear(4, 2)"),  # a parameter: its module
    ("model", "class Net(nn.Module):"),
    ("loss", '"loss_fn": nn.MSELoss(),'),  # a torch loss: where the spec gives it
])
def test_module_paths_point_at_their_assignment(user_module, location, expected):
    path, module = user_module
    finding = Finding(id="dead-relu", severity="warning", confidence=0.5, title="t", location=location)
    spec = SimpleNamespace(model=module.Net, loss_fn=module.dldoctor_spec()["loss_fn"])
    sources = Sources(roots=(path.parent,), model=module.Net(), spec=spec, spec_fn=module.dldoctor_spec)
    (located,) = locate((finding,), sources)
    assert Path(located.file) == path and _line(path, located) == expected


def test_a_factory_built_sequential_points_at_its_element(user_module):
    path, module = user_module
    sources = Sources(roots=(path.parent,), model=module.make(), spec=SimpleNamespace(model=module.build))
    (located,) = locate((Finding(id="x", severity="warning", confidence=0.5, title="t", location="model[1]"),), sources)
    assert _line(path, located) == "nn.Tanh(),"


def test_nothing_is_guessed_outside_the_users_files(user_module, tmp_path):
    _, module = user_module
    unknown = [Finding(id="x", severity="warning", confidence=0.5, title="t", location=loc)
               for loc in ("data", "optimizer", "nowhere.deep", "")]
    # roots elsewhere: the user's file is not theirs, so no line of it is given
    located = locate(unknown + [Finding(id="y", severity="warning", confidence=0.5, title="t", location="head")],
                     Sources(roots=(tmp_path / "other",), model=module.Net()))
    assert [f.file for f in located] == [""] * 5 and all(f.line == 0 for f in located)
    assert "file" not in located[0].to_dict() and "line" not in located[0].to_dict()


def test_file_and_line_round_trip_through_json():
    finding = Finding(id="x", severity="error", confidence=1.0, title="t", file="train.py", line=7)
    data = finding.to_dict()
    assert (data["file"], data["line"]) == ("train.py", 7)
    assert Finding.from_dict(data) == finding


def test_module_path_reads_display_paths():
    assert [module_path(p) for p in ("model", "model[6]", "model[0].fc", "encoder.layers.0", "loss inputs")] == \
        ["", "6", "0.fc", "encoder.layers.0", None]
