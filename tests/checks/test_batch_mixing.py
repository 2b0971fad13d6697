"""The batch-mixing check: mixing across the batch is found and localised; healthy models stay silent."""

import pytest
import torch
from torch import nn

from dldoctor.checks.running.batch_mixing import leaks, locate, looks_causal, sample_ranges
from dldoctor.core.context import default_forward
from dldoctor.probes.batch_dependence import (
    CallChange,
    RowGradient,
    choose_samples,
    measure_batch_dependence,
    slice_batch,
)
from tests.conftest import diagnose_file

BODY = """
import torch.nn.functional as F
g = torch.Generator().manual_seed(0)
X = {x}
y = torch.randint(0, 3, (X.shape[0],), generator=g)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
{init}

    def forward(self, x):
{forward}

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }}
"""

FEATURES = "torch.randn(96, 6, generator=g)"
SEQUENCES = "torch.randn(96, 12, 2, generator=g)"
TOKENS = "torch.randint(0, 20, (96, 10), generator=g)"
MLP_INIT = "self.fc1 = nn.Linear(6, 16)\nself.fc2 = nn.Linear(16, 3)"


def project(make_project, x, init, forward, extra=""):
    def indent(s):
        return "\n".join(("        " + line) if line.strip() else line for line in s.strip().splitlines())

    return make_project(BODY.format(x=x, init=indent(init), forward=indent(forward), extra=extra))


MIXING = {
    "softmax-over-batch": dict(
        x=FEATURES, init=MLP_INIT, forward="return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=0)",
        location="model", fix="dim 0"),
    "softmax-module-dim0": dict(
        x=FEATURES, init="self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=0))",
        forward="return self.net(x)", location="net.3", fix="use dim=1"),
    "softmax-built-in-forward": dict(
        x=FEATURES, init=MLP_INIT, forward="return nn.LogSoftmax(dim=0)(self.fc2(torch.relu(self.fc1(x))))",
        location="model", fix="use dim=1"),
    "manual-batch-norm": dict(
        x=FEATURES, init=MLP_INIT,
        forward="h = self.fc1(x)\nh = (h - h.mean(0)) / (h.std(0) + 1e-5)\nreturn self.fc2(torch.relu(h))",
        location="model", fix="after fc1"),
    "view-swaps-batch-and-features": dict(
        x=FEATURES, init=MLP_INIT,
        forward="h = self.fc1(x)\nh = h.t().reshape(x.size(0), -1)\nreturn self.fc2(torch.relu(h))",
        location="model", fix="reshape"),
    "lstm-not-batch-first": dict(
        x=SEQUENCES, init="self.lstm = nn.LSTM(2, 8)\nself.fc = nn.Linear(8, 3)",
        forward="out, _ = self.lstm(x)\nreturn self.fc(out[:, -1])", location="lstm", fix="batch_first=True"),
    "view-to-sequence-first": dict(
        x=SEQUENCES, init="self.gru = nn.GRU(2, 8)\nself.fc = nn.Linear(8, 3)",
        forward="n, t, f = x.shape\n_, h = self.gru(x.view(t, n, f))\nreturn self.fc(h[-1])",
        location="model", fix="transpose"),
    "transformer-transpose-then-reshape": dict(
        x=TOKENS,
        init="self.emb = nn.Embedding(20, 8)\n"
             "self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 1, "
             "enable_nested_tensor=False)\nself.fc = nn.Linear(80, 3)",
        forward="h = self.enc(self.emb(x).transpose(0, 1))\nreturn self.fc(h.reshape(x.size(0), -1))",
        location="model", fix="batch_first"),
}


@pytest.mark.parametrize("name", sorted(MIXING))
def test_mixing_is_found_and_localised(make_project, name):
    case = MIXING[name]
    path = project(make_project, case["x"], case["init"], case["forward"])
    diagnosis = diagnose_file(path, select=("batch-mixing",))
    assert [f.id for f in diagnosis.diagnoses] == ["batch-mixing"], diagnosis.diagnoses
    top = diagnosis.diagnoses[0]
    assert top.severity.value == "error" and top.confidence >= 0.8
    assert top.location == case["location"]
    assert case["fix"].lower() in top.fixes[0].lower(), top.fixes[0]
    assert float(top.metrics["max_relative_gradient"]) > 1e-2  # "inf" when a row ignores its own sample
    assert any(e.startswith("output of sample") for e in top.evidence)


HEALTHY = {
    "mlp": dict(x=FEATURES, init=MLP_INIT, forward="return self.fc2(torch.relu(self.fc1(x)))"),
    "softmax-over-features": dict(
        x=FEATURES, init=MLP_INIT, forward="return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)",
        extra='"task": "classification",'),
    "batch-norm": dict(
        x=FEATURES, init="self.net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))",
        forward="return self.net(x)"),
    "layer-norm-and-flatten": dict(
        x="torch.randn(96, 2, 4, 4, generator=g)",
        init="self.conv = nn.Conv2d(2, 4, 3, padding=1)\nself.norm = nn.LayerNorm(64)\nself.fc = nn.Linear(64, 3)",
        forward="h = torch.relu(self.conv(x)).view(x.size(0), -1)\nreturn self.fc(self.norm(h))"),
    "lstm-batch-first": dict(
        x=SEQUENCES, init="self.lstm = nn.LSTM(2, 8, batch_first=True)\nself.fc = nn.Linear(8, 3)",
        forward="out, _ = self.lstm(x)\nreturn self.fc(out[:, -1])"),
    "gru-sequence-first-done-right": dict(
        x=SEQUENCES, init="self.gru = nn.GRU(2, 8)\nself.fc = nn.Linear(8, 3)",
        forward="out, _ = self.gru(x.transpose(0, 1))\n"
                "return self.fc(out.transpose(0, 1).reshape(x.size(0), 12, 8)[:, -1])"),
    "transformer-batch-first": dict(
        x=TOKENS,
        init="self.emb = nn.Embedding(20, 8)\n"
             "self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1, "
             "enable_nested_tensor=False)\nself.fc = nn.Linear(8, 3)",
        forward="return self.fc(self.enc(self.emb(x)).mean(1))"),
    "attention-softmax-over-time": dict(
        x=SEQUENCES, init="self.gru = nn.GRU(2, 8, batch_first=True)\nself.score = nn.Linear(8, 1)\n"
                         "self.fc = nn.Linear(8, 3)",
        forward="h, _ = self.gru(x)\nw = torch.softmax(self.score(h), dim=1)\nreturn self.fc((w * h).sum(1))"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_are_silent(make_project, name):
    case = HEALTHY[name]
    path = project(make_project, case["x"], case["init"], case["forward"], case.get("extra", ""))
    diagnosis = diagnose_file(path, select=("batch-mixing",))
    assert diagnosis.diagnoses == ()
    assert {c.name: c.status.value for c in diagnosis.checks}["batch-mixing"] == "passed"


def test_flattened_per_token_outputs_of_a_causal_model_are_silent(make_project):
    body = """
    g = torch.Generator().manual_seed(0)
    T = torch.randint(0, 30, (64, 11), generator=g)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(30, 8)
            self.gru = nn.GRU(8, 16, batch_first=True)
            self.out = nn.Linear(16, 30)

        def forward(self, t):
            return self.out(self.gru(self.emb(t))[0])

    def lm_forward(model, batch):
        (t,) = batch
        return model(t[:, :-1]).reshape(-1, 30), t[:, 1:].reshape(-1)

    def dldoctor_spec():
        return {"model": LM, "train_loader": DataLoader(TensorDataset(T), batch_size=16),
                "loss_fn": nn.CrossEntropyLoss(), "optimizer": lambda p: torch.optim.Adam(p),
                "forward": lm_forward}
    """
    diagnosis = diagnose_file(make_project(body), select=("batch-mixing",))
    assert diagnosis.diagnoses == ()


def test_batch_norm_built_in_forward_is_left_to_the_eval_mode_check(make_project):
    path = project(make_project, FEATURES, MLP_INIT,
                   "return self.fc2(torch.relu(nn.BatchNorm1d(16)(self.fc1(x))))")
    diagnosis = diagnose_file(path, select=("batch-mixing",))
    assert [(f.id, f.severity.value) for f in diagnosis.diagnoses] == [("batch-mixing", "info")]


# -- the probe and the judging functions on their own -----------------------------------
def test_probe_leaves_the_model_untouched_and_reports_zero_for_independent_samples():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(20, 5), torch.zeros(20, dtype=torch.long))
    dep = measure_batch_dependence(model, batch, default_forward, seed=0, samples=8, rows=3, tolerance=1e-3)
    assert dep.status == "measured" and dep.samples == 8 and len(dep.rows) == 3
    assert all(v == 0 for g in dep.rows for j, v in enumerate(g.relative()) if j != g.owner)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert dep.calls == ()  # nothing to localise
    assert not torch.nn.modules.module._global_forward_hooks and not torch.nn.modules.module._global_forward_pre_hooks


def test_probe_does_not_apply_when_dim0_is_not_the_loaders_batch():
    model = nn.GRU(3, 4)
    batch = (torch.randn(12, 32, 3), torch.zeros(32, dtype=torch.long))
    dep = measure_batch_dependence(model, batch, lambda m, b: (m(b[0])[0][-1], b[1]), 0, 8, 3, 1e-3,
                                   loader_batch_size=32)
    assert dep.status == "not-applicable" and "not the batch" in dep.reason


def test_slice_and_sample_count():
    batch = {"x": torch.zeros(10, 8, 8), "y": torch.zeros(10), "w": torch.zeros(3)}
    assert choose_samples(batch, 10, 8) == 7  # 8 is the width of the images
    small = slice_batch(batch, 10, 7)
    assert small["x"].shape == (7, 8, 8) and small["y"].shape == (7,) and small["w"].shape == (3,)


def test_leaks_ranges_and_causal_pattern():
    rows = (RowGradient(0, 0, (1.0, 0.0, 0.0, 0.0)), RowGradient(3, 3, (0.2, 0.0, 1e-5, 2.0)))
    found = leaks(rows, 1e-3)
    assert len(found) == 1 and found[0].others == (0,) and found[0].worst == pytest.approx(0.1)
    assert looks_causal(found)
    assert sample_ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert RowGradient(0, 0, (0.0, 1.0)).relative() == (0.0, float("inf"))


def _call(label, inp, out, parent="model", registered=True, training=False):
    return CallChange(label, label, "Linear", registered, parent, training, False, "", (8, 4), (8, 4), inp, out)


def test_locate_inside_a_module_or_between_two():
    inside = locate((_call("fc1", 0.0, 0.0), _call("soft", 0.0, 0.3)), 1e-4)
    assert inside.location == "soft" and inside.inside.label == "soft"
    between = locate((_call("fc1", 0.0, 0.0), _call("rnn", None, None), _call("fc2", 0.5, 0.4)), 1e-4)
    assert between.location == "model" and between.inside is None
    assert between.last_clean.label == "fc1" and [c.label for c in between.between] == ["rnn"]
    assert locate((_call("fc1", 0.0, 0.0),), 1e-4) is None
