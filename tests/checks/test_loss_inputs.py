"""The loss-inputs check: probabilities into logit losses (and the reverse), and silence when they fit."""

import pytest
import torch

from dldoctor.checks.running.loss_inputs import Thresholds, judge
from dldoctor.probes.forward_trace import output_summary
from dldoctor.probes.loss_probe import loss_kind, producing_op
from tests.conftest import diagnose_file

HEADER = """\
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
"""

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
labels = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
binary = (X[:, 0] > 0).float().view(-1, 1)
soft = torch.softmax(torch.randn(96, 3, generator=g), dim=1)

class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, width)

    def forward(self, x):
        return {ret}

def make():
    model = {model}
    {init}
    return model

def dldoctor_spec():
    return {{
        "model": make,
        "train_loader": DataLoader(TensorDataset(X, {targets}), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""


def project(make_project, *, model="Net(3)", ret="self.head(self.body(x))", targets="labels",
            loss="nn.CrossEntropyLoss()", init="pass"):
    return make_project(BODY.format(model=model, ret=ret, targets=targets, loss=loss, init=init), header=HEADER)


def findings(path):
    diagnosis = diagnose_file(path, select=("loss-inputs",))
    assert {c.name: c.status.value for c in diagnosis.checks}["loss-inputs"] in ("passed", "failed")
    return [f for f in diagnosis.diagnoses if f.id == "loss-input-probabilities"]


SOFTMAX_SEQ = "nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))"

TRIGGERS = {
    "softmax-module-into-cross-entropy": dict(kw=dict(model=SOFTMAX_SEQ), severity="error", location="model[3]",
                                              fix="Remove the final model[3] (Softmax)"),
    "functional-softmax-into-lambda-ce": dict(
        kw=dict(ret="torch.softmax(self.head(self.body(x)), dim=1)", loss="lambda out, y: F.cross_entropy(out, y)"),
        severity="error", location="model", fix="drop the softmax"),
    "logits-into-nll": dict(kw=dict(loss="nn.NLLLoss()"), severity="error", location="head",
                            fix="torch.log_softmax(scores, dim=1) from forward (scores = the output of head (Linear))"),
    "softmax-into-nll": dict(kw=dict(model=SOFTMAX_SEQ, loss="nn.NLLLoss()"), severity="error",
                             location="model[3]", fix="Replace model[3] (Softmax) with nn.LogSoftmax"),
    "sigmoid-into-bce-with-logits": dict(
        kw=dict(model="Net(1)", ret="torch.sigmoid(self.head(self.body(x)))", targets="binary",
                loss="nn.BCEWithLogitsLoss()"), severity="error", location="model", fix="drop the sigmoid"),
    "sigmoid-module-into-cross-entropy": dict(
        kw=dict(model="nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Sigmoid())"),
        severity="error", location="model[3]", fix="Remove the final model[3] (Sigmoid)"),
}


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_wrong_space_is_reported_and_localised(make_project, name):
    case = TRIGGERS[name]
    found = findings(project(make_project, **case["kw"]))
    assert len(found) == 1, name
    f = found[0]
    assert f.severity.value == case["severity"]
    assert f.location == case["location"]
    assert case["fix"] in f.fixes[0]
    assert f.evidence and f.metrics["case"]


def test_the_evidence_quotes_the_row_sums_and_the_loss_floor(make_project):
    f = findings(project(make_project, model=SOFTMAX_SEQ))[0]
    assert "rows sum to 1" in f.evidence[0]
    assert "model[3] (Softmax)" in f.evidence[1]
    assert f.metrics["row_sum_dev"] < 1e-5
    assert f.metrics["loss_floor"] == pytest.approx(0.551, abs=1e-3)  # ln(1 + 2/e) for 3 classes


HEALTHY = {
    "logits-into-cross-entropy": dict(),
    "label-smoothing": dict(loss="nn.CrossEntropyLoss(label_smoothing=0.1)"),
    "soft-targets": dict(targets="soft"),
    "log-softmax-into-nll": dict(ret="F.log_softmax(self.head(self.body(x)), dim=1)", loss="nn.NLLLoss()"),
    "log-softmax-into-lambda-nll": dict(ret="F.log_softmax(self.head(self.body(x)), dim=1)",
                                        loss="lambda out, y: F.nll_loss(out, y)"),
    "log-softmax-into-cross-entropy": dict(ret="F.log_softmax(self.head(self.body(x)), dim=1)"),
    "zero-initialised-head": dict(init="nn.init.zeros_(model.head.weight); nn.init.zeros_(model.head.bias)"),
    "small-positive-logits": dict(init="nn.init.zeros_(model.head.weight); nn.init.constant_(model.head.bias, 0.3)"),
    "sigmoid-into-bce": dict(model="Net(1)", ret="torch.sigmoid(self.head(self.body(x)))", targets="binary",
                             loss="nn.BCELoss()"),
    "logits-into-bce-with-logits": dict(model="Net(1)", targets="binary", loss="nn.BCEWithLogitsLoss()"),
    "custom-loss-of-unknown-kind": dict(model=SOFTMAX_SEQ,
                                        loss="lambda out, y: F.cross_entropy(out, y) + 0.01 * out.pow(2).mean()"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_outputs_in_the_right_space_are_silent(make_project, name):
    assert findings(project(make_project, **HEALTHY[name])) == []


def test_a_logits_head_that_starts_inside_the_unit_interval_is_not_called_squashed(make_project):
    """Every initial output lies in (0, 1) (a bias of 0.5, small weights): only the range
    says "squashed", and a few steps of training take the outputs out of it."""
    init = "nn.init.normal_(model.head.weight, std=0.01); nn.init.constant_(model.head.bias, 0.5)"
    assert findings(project(make_project, model="Net(1)", targets="binary", loss="nn.BCEWithLogitsLoss()",
                            init=init)) == []


def test_outputs_bounded_by_a_hand_written_sigmoid_stay_bounded_when_trained(make_project):
    (f,) = findings(project(make_project, model="Net(1)", ret="1 / (1 + torch.exp(-self.head(self.body(x))))",
                            targets="binary", loss="nn.BCEWithLogitsLoss()"))
    assert f.severity.value == "warning" and 0.0 <= f.metrics["trained_min"] <= f.metrics["trained_max"] <= 1.0
    assert "something bounds them" in " ".join(f.evidence)


# -- the pure judgement --------------------------------------------------------------

T = Thresholds(prob_row_tolerance=1e-3, low_precision_tolerance=2e-2, logits_min_exp_row_dev=0.1,
               min_values_for_range=32)


def judged(kind, out, op="Addmm", dtype="float32"):
    width = out.shape[1] if out.dim() >= 2 else 1
    return judge(kind, output_summary(out), width, out.dim(), op, dtype, out.numel(), T)


def test_softmax_rows_into_cross_entropy_are_an_error_whatever_made_them():
    verdict = judged("logits", torch.softmax(torch.randn(16, 5), dim=1), op="Exp")
    assert verdict.case == "probs-into-logits" and verdict.severity.value == "error"


def test_values_in_unit_interval_alone_are_not_evidence_for_a_multiclass_loss():
    assert judged("logits", torch.rand(64, 5)) is None


def test_bounded_binary_outputs_without_a_sigmoid_are_a_warning_only_with_enough_values():
    assert judged("binary-logits", 0.2 + 0.6 * torch.rand(64, 1)).severity.value == "warning"
    assert judged("binary-logits", 0.2 + 0.6 * torch.rand(8, 1)) is None


def test_constant_outputs_are_not_called_probabilities():
    assert judged("binary-logits", torch.zeros(64, 1), op="Sigmoid") is None


def test_low_precision_log_softmax_is_tolerated():
    out = torch.log_softmax(torch.randn(32, 10), dim=1).to(torch.bfloat16)
    assert judged("log-probs", out.float(), dtype="bfloat16") is None


def test_kl_divergence_on_sequences_is_not_judged_on_dim_1():
    out = torch.randn(4, 6, 10)
    assert judge("log-probs", output_summary(out), 6, 3, "Addmm", "float32", out.numel(), T, "KLDivLoss") is None


def test_loss_kind_from_name_then_from_measured_matches():
    assert loss_kind("CrossEntropyLoss") == ("logits", "name")
    assert loss_kind("<lambda>", ("nll_loss",)) == ("log-probs", "measured")
    assert loss_kind("<lambda>", ("cross_entropy", "nll_loss")) == ("", "")
    assert loss_kind("focal_loss") == ("", "")


def test_producing_op_looks_through_views():
    x = torch.randn(4, 3, requires_grad=True)
    assert producing_op(torch.softmax(x, dim=1).view(-1)) == "Softmax"
    assert producing_op(torch.sigmoid(x)[:, :1].squeeze(1)) == "Sigmoid"
    assert producing_op(x.detach()) == ""
