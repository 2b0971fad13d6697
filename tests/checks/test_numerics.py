"""The numerics check: NaN/Inf from the data, the forward pass, the loss, backward or the first step."""

import pytest

from dldoctor.checks.running.numerics import op_family
from tests.conftest import HEALTHY_BODY, diagnose_file

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = (X[:, 0] > 0).long()
{data}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, {out})
        {init}

    def forward(self, x):
        {forward}

{extra}

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.{optimizer},
    }}
"""


def body(forward="return self.fc2(torch.relu(self.fc1(x)))", loss="nn.CrossEntropyLoss()", data="", extra="",
         init="pass", out=2, optimizer="Adam(p, lr=1e-2)"):
    return BODY.format(forward=forward, loss=loss, data=data, extra=extra, init=init, out=out, optimizer=optimizer)


def run(make_project, text):
    diagnosis = diagnose_file(make_project(text), select=("numerics",))
    status = {c.name: c.status.value for c in diagnosis.checks}["numerics"]
    assert status in ("passed", "failed"), diagnosis.checks
    return [d for d in diagnosis.diagnoses if d.id == "numerical-instability"]


BUGS = {
    "log-in-forward": dict(
        text=body(forward="h = torch.log(torch.relu(self.fc1(x)))\n        return self.fc2(h)"),
        location="model", words=["torch.log", "exact zeros", "log_softmax"], line="torch.log(torch.relu"),
    "overflowing-exp-in-a-layer": dict(
        text=body(init="nn.init.constant_(self.fc1.weight, 30.0)",
                  forward="e = torch.exp(self.fc1(x))\n        return self.fc2(e / e.sum(1, keepdim=True))"),
        location="model", words=["torch.exp", "logsumexp"], line="torch.exp(self.fc1(x))"),
    "log-of-probabilities-in-loss": dict(
        text=body(forward="return torch.softmax(self.fc2(torch.relu(self.fc1(x))) * 200, dim=1)",
                  loss="prob_nll",
                  extra="def prob_nll(p, t):\n    return -torch.log(p[torch.arange(len(t)), t]).mean()"),
        location="loss", words=["loss function", "torch.log", "log_softmax"], line="return -torch.log"),
    "division-by-zero-sum-on-one-batch-only": dict(
        text=body(data="X[40] = 0.0",
                  forward="return self.fc2(torch.relu(self.fc1(x / x.abs().sum(1, keepdim=True))))"),
        location="model", words=["division by zero", "1 of 3", "1e-8"], line="x / x.abs().sum"),
    # Batch 3 is checked by the step check's own first pass (its batch), not by a pass of its own.
    "division-by-zero-sum-on-the-third-batch-only": dict(
        text=body(data="X[70] = 0.0",
                  forward="return self.fc2(torch.relu(self.fc1(x / x.abs().sum(1, keepdim=True))))"),
        location="model", words=["division by zero", "1 of 3", "batch 3"], line="x / x.abs().sum"),
    "sqrt-of-zero-distance-in-backward": dict(
        text=body(out=4, loss="pair_loss",
                  extra="def pair_loss(e, t):\n    d = torch.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))\n"
                        "    return (d - 1).abs().mean()"),
        location="loss", words=["backward", "sqrtbackward0", "epsilon"], line="torch.sqrt((("),
    "nan-in-the-data": dict(
        text=body(data="X[::9, 2] = float('nan')"), location="data", words=["nan", "column 2", "impute"],
        line=None),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_origin_is_localised(make_project, name):
    case = BUGS[name]
    found = run(make_project, case["text"])
    assert found, f"{name}: nothing reported"
    top = found[0]
    assert top.severity.value == "error" and top.location == case["location"], top
    text = " ".join((top.title, *top.evidence, *top.fixes)).lower()
    for word in case["words"]:
        assert word.lower() in text, (word, text)
    if case["line"]:
        assert case["line"] in top.metrics["user_line"], top.metrics


def test_a_step_that_always_breaks_is_reported(make_project):
    text = body(out=1, loss="lambda o, t: ((o.squeeze(1) - t.float() + 10.0) ** 2).mean()",
                init="self.scale = nn.Parameter(torch.tensor(1e-12))",
                forward="return self.fc2(torch.relu(self.fc1(x))) + torch.sqrt(self.scale)")
    (top,) = run(make_project, text)
    assert top.severity.value == "error" and top.metrics["after_step"] is True
    assert "after one optimiser step" in top.title.lower() and top.metrics["op"] == "torch.sqrt"


HEALTHY = {
    "plain-mlp": HEALTHY_BODY,
    "log-softmax-nll": body(forward="return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)",
                            loss="nn.NLLLoss()"),
    "log-with-epsilon-on-probabilities": body(
        forward="return torch.softmax(self.fc2(torch.relu(self.fc1(x))) * 200, dim=1)", loss="prob_nll",
        extra="def prob_nll(p, t):\n    return -torch.log(p[torch.arange(len(t)), t] + 1e-8).mean()"),
    "causal-mask-with-minus-inf": body(
        forward="s = x.unsqueeze(2) * x.unsqueeze(1)\n"
                "        s = s.masked_fill(torch.ones(8, 8, dtype=torch.bool).triu(1), float('-inf'))\n"
                "        return self.fc2(torch.relu(self.fc1(torch.softmax(s, -1).sum(1))))"),
    "nan-in-data-that-the-model-imputes": body(
        data="X[::9, 2] = float('nan')",
        forward="return self.fc2(torch.relu(self.fc1(torch.nan_to_num(x))))"),
    # One step at this learning rate overflows; a 1000x smaller one does not: lr-too-high's business.
    "learning-rate-overflow-after-one-step": body(
        out=1, loss="lambda o, t: ((o.squeeze(1) - t.float()) ** 2).mean()", optimizer="SGD(p, lr=1e21)"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_are_silent(make_project, name):
    found = run(make_project, HEALTHY[name])
    assert all(f.severity.value == "info" for f in found), found


def test_handled_nan_in_data_is_info_at_data(make_project):
    (info,) = run(make_project, HEALTHY["nan-in-data-that-the-model-imputes"])
    assert info.location == "data" and info.metrics["reaches_loss"] is False


@pytest.mark.parametrize("op,family", [
    ("torch.log", "log"), ("Tensor.__truediv__", "div"), ("Tensor.__rtruediv__", "div"), ("Tensor.div", "div"),
    ("SqrtBackward0 (of torch.sqrt)", "root"), ("PowBackward0", "root"), ("torch.exp", "overflow"),
    ("F.linear", "overflow"), ("torch.softmax", "softmax"), ("Tensor.acos", "domain"), ("Tensor.abs", "other"),
])
def test_op_family(op, family):
    assert op_family(op) == family


def test_unsafe_operations_are_those_that_make_nan_by_themselves():
    from dldoctor.readings.nonfinite import unsafe_op

    for op in ("torch.log", "Tensor.__truediv__", "torch.exp", "SqrtBackward0 (of torch.sqrt)", "torch.acos",
               "F.softmax"):
        assert unsafe_op(op), op
    for op in ("F.linear", "torch.rnn_relu", "torch.matmul", "Tensor.__mul__", "F.cross_entropy"):
        assert not unsafe_op(op), op  # these only overflow when the values fed to them grew
