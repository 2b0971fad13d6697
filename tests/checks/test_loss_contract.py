"""The loss-contract check: target rows against CrossEntropyLoss / KLDivLoss, and the sign test."""

import pytest
import torch
from torch import nn

from dldoctor.probes.loss_probe import LossProbe, TargetRows
from dldoctor.readings.loss_contract import judge_distributions, judge_sign, torch_loss_name
from tests.conftest import diagnose_file

BODY = """
import torch.nn.functional as F

g = torch.Generator().manual_seed(0)
N = 256
X = torch.randn(N, 8, generator=g)
W = torch.randn(8, {width}, generator=g)
classes = (X @ W).argmax(1)

def pearson(o, t):
    o, t = o.view(-1) - o.mean(), t.view(-1) - t.mean()
    return (o * t).sum() / (o.norm() * t.norm() + 1e-8)

LOSSES = {{
    "cosine": lambda o, t: F.cosine_similarity(o, t, dim=1).mean(),
    "one-minus-cosine": lambda o, t: 1 - F.cosine_similarity(o, t, dim=1).mean(),
    "pearson": pearson,
    "negative-pearson": lambda o, t: -pearson(o, t),
    "negated-mse": lambda o, t: -F.mse_loss(o, t),
}}

targets = {targets}

def dldoctor_spec():
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {width}){head}),
        "train_loader": DataLoader(TensorDataset(X, targets), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""

REGRESSION = "X @ W"
MULTI_HOT = "((X @ W) > 0.3).float()"
SMOOTHED = "F.one_hot(classes, {width}).float() * 0.9 + 0.1 / {width}"


def findings(make_project, loss, targets=REGRESSION, width=4, head=""):
    body = BODY.format(loss=loss, targets=targets.format(width=width), width=width, head=head)
    diagnosis = diagnose_file(make_project(body), select=("loss-contract",))
    assert {c.name: c.status.value for c in diagnosis.checks}["loss-contract"] in ("passed", "failed")
    return [f for f in diagnosis.diagnoses if f.check == "loss-contract" or "loss-contract" in f.checks]


# -- the sign test ------------------------------------------------------------------

@pytest.mark.parametrize("loss", ['LOSSES["cosine"]', 'LOSSES["pearson"]', 'LOSSES["negated-mse"]'])
def test_an_objective_that_is_highest_at_a_perfect_prediction_is_flipped(make_project, loss):
    width = 1 if "pearson" in loss else 4
    [f] = findings(make_project, loss, targets=REGRESSION if width == 4 else "(X @ W).view(-1)", width=width,
                   head=", nn.Flatten(0)" if width == 1 else "")
    assert f.id == "loss-sign-flipped" and f.severity.value == "error" and f.location == "loss"
    m = f.metrics
    assert m["loss_at_outputs"] < m["loss_halfway"] < m["loss_at_perfect"]
    assert m["grad_at_perfect"] <= 1e-3 * m["grad_at_outputs"]


@pytest.mark.parametrize("loss,targets,width,head", [
    ('LOSSES["one-minus-cosine"]', REGRESSION, 4, ""),
    ('LOSSES["negative-pearson"]', "(X @ W).view(-1)", 1, ", nn.Flatten(0)"),
    ("nn.MSELoss()", REGRESSION, 4, ""),
    ("nn.L1Loss()", REGRESSION, 4, ""),
    ("nn.CrossEntropyLoss()", "classes", 4, ""),  # class indices: outputs cannot equal them
    ("nn.CrossEntropyLoss()", SMOOTHED, 4, ""),  # probabilities: not the logits' space
    # Logits whose bias starts at the prior log-odds: a "perfect" logit equal to a 0/1
    # target is not where this loss rests (its gradient there is sigmoid(y) - y).
    ("nn.BCEWithLogitsLoss()", "((X @ W)[:, :1] > 1.5).float()", 1, ""),
    ("nn.BCELoss()", "((X @ W)[:, :1] > 0).float()", 1, ", nn.Sigmoid()"),
])
def test_losses_that_point_the_right_way_are_silent(make_project, loss, targets, width, head):
    assert findings(make_project, loss, targets=targets, width=width, head=head) == []


def _probe(at_out, half, perfect, g_out=1.0, g_perfect=0.0):
    return LossProbe(measured=True, loss_at_outputs=at_out, loss_halfway=half, loss_at_perfect=perfect,
                     grad_at_outputs=g_out, grad_at_perfect=g_perfect)


def test_the_sign_test_needs_a_stationary_perfect_prediction_and_a_rise_towards_it():
    assert judge_sign("", _probe(0.1, 0.9, 1.0), 1e-3, 0.05).diagnosis_id == "loss-sign-flipped"
    assert judge_sign("", _probe(0.1, 0.9, 1.0, g_perfect=0.1), 1e-3, 0.05) is None  # not where the loss rests
    assert judge_sign("", _probe(0.1, 1.2, 1.0), 1e-3, 0.05) is None  # no monotone rise
    assert judge_sign("", _probe(0.99, 0.995, 1.0), 1e-3, 0.05) is None  # within rounding of equal
    assert judge_sign("", _probe(1.0, 0.5, 0.0), 1e-3, 0.05) is None  # an ordinary loss
    assert judge_sign("binary-logits", _probe(0.1, 0.9, 1.0), 1e-3, 0.05) is None  # its inputs are never targets


# -- target rows as distributions ---------------------------------------------------

def test_multi_hot_rows_into_cross_entropy_are_an_error(make_project):
    [f] = findings(make_project, "nn.CrossEntropyLoss()", targets=MULTI_HOT, width=8)
    assert f.id == "label-out-of-range" and f.severity.value == "error" and f.location == "data"
    assert f.metrics["row_sum_dev"] > 0.5 and "BCEWithLogitsLoss" in f.fixes[0]


def test_scores_into_cross_entropy_are_not_probabilities(make_project):
    [f] = findings(make_project, "nn.CrossEntropyLoss()", targets=REGRESSION, width=4)
    assert f.id == "label-out-of-range" and f.severity.value == "error"
    assert f.metrics["target_min"] < 0 and "outside [0, 1]" in f.title


def test_log_probabilities_into_kl_divergence_need_log_target(make_project):
    targets = "torch.log_softmax(X @ W, dim=1)"
    [f] = findings(make_project, 'nn.KLDivLoss(reduction="batchmean")', targets=targets, head=", nn.LogSoftmax(1)")
    assert f.id == "label-out-of-range" and "log_target=True" in f.title and f.location == "loss"
    assert findings(make_project, 'nn.KLDivLoss(reduction="batchmean", log_target=True)', targets=targets,
                    head=", nn.LogSoftmax(1)") == []


@pytest.mark.parametrize("loss,targets", [
    ("nn.CrossEntropyLoss()", SMOOTHED),
    ("nn.CrossEntropyLoss(label_smoothing=0.1)", "F.one_hot(classes, {width}).float()"),
    ('nn.KLDivLoss(reduction="batchmean")', "torch.softmax(X @ W, dim=1)"),
])
def test_rows_that_are_distributions_are_silent(make_project, loss, targets):
    head = ", nn.LogSoftmax(1)" if "KLDiv" in loss else ""
    assert findings(make_project, loss, targets=targets, head=head) == []


def rows(minimum=0.0, maximum=1.0, min_sum=1.0, max_sum=1.0, exp_dev=2.0):
    return TargetRows(64, 4, minimum, maximum, min_sum, max_sum, max(abs(min_sum - 1), abs(max_sum - 1)), exp_dev)


def test_the_distribution_judgement_by_loss():
    assert judge_distributions("CrossEntropyLoss", rows(), False, 1e-3) is None
    assert judge_distributions("cross_entropy", rows(max_sum=3.0), False, 1e-3).severity.value == "error"
    assert judge_distributions("CrossEntropyLoss", rows(min_sum=0.5), False, 1e-3).severity.value == "warning"
    assert judge_distributions("MSELoss", rows(minimum=-3.0), False, 1e-3) is None  # no distribution contract
    log_rows = rows(minimum=-5.0, maximum=-0.01, min_sum=-9.0, max_sum=-4.0, exp_dev=1e-7)
    assert judge_distributions("KLDivLoss", log_rows, False, 1e-3).metrics["exp_row_sum_dev"] == 1e-7
    assert judge_distributions("KLDivLoss", log_rows, True, 1e-3) is None
    assert judge_distributions("kl_div", rows(), True, 1e-3).title.startswith("KLDivLoss(log_target=True)")


def test_the_contract_is_the_torch_class_even_through_a_subclass():
    class FocalBCE(nn.BCEWithLogitsLoss):
        pass

    assert torch_loss_name(FocalBCE()) == "BCEWithLogitsLoss"
    assert torch_loss_name(nn.KLDivLoss()) == "KLDivLoss"
    assert torch_loss_name(torch.nn.functional.cross_entropy) == "cross_entropy"
    assert torch_loss_name(lambda o, t: o) == "<lambda>"
