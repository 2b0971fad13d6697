"""Property-based fuzz over spec dictionaries: whatever the user's spec holds, dldoctor
answers with exit code 0, 1 or 2, never leaks an internal exception, and never calls a
run healthy when one of its checks could not finish."""

from __future__ import annotations

import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dldoctor.core.errors import DldoctorError
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from tests.conftest import SPEC_HEADER, diagnose_file

PRELUDE = """\
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = (X[:, 0] > 0).long()

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

class RaisesInForward(Net):
    def forward(self, x):
        raise ValueError("the user's forward is broken")

class ReturnsDict(Net):
    def forward(self, x):
        return {"logits": super().forward(x)}

class ReturnsTuple(Net):
    def forward(self, x):
        out = super().forward(x)
        return out, out.detach()

class LateRaise:
    def __iter__(self):
        for i, batch in enumerate(DataLoader(TensorDataset(X, y), batch_size=16)):
            if i == 2:
                raise RuntimeError("corrupt record in shard 3")
            yield batch

def broken_factory():
    raise OSError("data folder missing")

def loss_raises(outputs, targets):
    raise KeyError("label")
"""

MODELS = ["Net", "lambda: None", "lambda: Net().double()", "Net()", "RaisesInForward", "ReturnsDict",
          "ReturnsTuple", "42", "nn.Identity"]
LOADERS = ["DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)", "[]", "[X[:8], X[8:16]]",
           "broken_factory", "iter([(X, y)])", "[{'x': X[:16], 'y': y[:16]}]", "LateRaise()",
           "DataLoader(TensorDataset(X, y, y), batch_size=32)", "'data/train'",
           "DataLoader(TensorDataset(X, y.float()), batch_size=32)", "[(X[:16], y[:16] + 5)]"]
LOSSES = ["nn.CrossEntropyLoss()", "nn.CrossEntropyLoss", "lambda o, t: 1.0", "nn.CrossEntropyLoss(reduction='none')",
          "nn.MSELoss()", "None", "loss_raises", "nn.NLLLoss()"]
OPTIMIZERS = ["lambda p: torch.optim.Adam(p, lr=1e-2)", "lambda p: None", "torch.optim.SGD",
              "torch.optim.Adam(Net().parameters())", "'adam'", "lambda p: torch.optim.SGD(p, lr=float('nan'))"]
EXTRAS = ["", '"task": "nonsense",', '"num_classes": -1,', '"grad_clip_norm": "x",', '"unknown_key": 1,',
          '"forward": 5,', '"val_loader": LateRaise(),', '"scheduler": lambda opt: None,',
          '"reference": {"metric": "val_accuracy"},', '"forward": lambda model, batch: model(batch[0]),']
KEYS = ("model", "train_loader", "loss_fn", "optimizer")


def mostly_first(options: list[str]):
    """The first (healthy) option about two times in three, else any: specs broken in one
    or two places at once, and some healthy ones, rather than everything broken."""
    return st.one_of(st.just(options[0]), st.just(options[0]), st.just(options[0]), st.sampled_from(options))


@st.composite
def spec_files(draw):
    values = {
        "model": draw(mostly_first(MODELS)),
        "train_loader": draw(mostly_first(LOADERS)),
        "loss_fn": draw(mostly_first(LOSSES)),
        "optimizer": draw(mostly_first(OPTIMIZERS)),
    }
    dropped = draw(st.one_of(st.just(set()), st.just(set()), st.sets(st.sampled_from(KEYS), max_size=1)))
    extra = draw(mostly_first(EXTRAS))
    lines = [f'        "{k}": {v},' for k, v in values.items() if k not in dropped]
    return PRELUDE + "\ndef dldoctor_spec():\n    return {\n" + "\n".join(lines) + f"\n        {extra}\n    }}\n"


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(spec_files())
def test_any_spec_gets_a_documented_answer(tmp_path_factory, source):
    path = tmp_path_factory.mktemp("fuzz") / "train.py"
    path.write_text(SPEC_HEADER + textwrap.dedent(source))
    try:
        diagnosis = diagnose_file(path, stages=(Stage.RUN,))
    except DldoctorError:  # a usage problem: printed as a message, exit 2
        return
    code = int(diagnosis.exit_code(FailOn.ERROR))
    assert code in (0, 1, 2)
    errored = [c for c in diagnosis.checks if c.status.value == "errored"]
    if errored:
        assert diagnosis.status != "healthy", [c.name for c in errored]
        assert any(f.id in ("check-incomplete", "entrypoint-error") for f in diagnosis.diagnoses)
    internal = [f.title for f in diagnosis.diagnoses if "dldoctor's check raised" in f.title]
    assert not internal, internal
