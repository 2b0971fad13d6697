"""The bias-variance check's verdicts: a gap is over-fitting only beyond what the validation
set's size makes ordinary, and under-fitting needs a known floor or a run that has stopped
improving."""

import math

import pytest

from dldoctor.checks.evaluate.bias_variance import read_bias, read_variance
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.readings.generalisation import gap_standard_error, training_loss_left
from tests.conftest import REPO, diagnose_file

ZOO = REPO / "examples" / "bugs"


def finding(diagnosis_id, value, severity=Severity.WARNING):
    return Finding(id=diagnosis_id, severity=severity, confidence=0.9, title=f"{diagnosis_id} {value:.3f}",
                   check="bias-variance", evidence=("numbers",), metrics={"value": value})


def test_the_gap_standard_error_follows_the_split_sizes():
    # 60 validation samples at 10% error, 300 training samples at 2%: Agresti-Caffo.
    se = gap_standard_error("1 - accuracy", 0.02, 0.10, 300, 60)
    assert se == pytest.approx(0.041, abs=0.001)
    # No errors at all still leave a standard error (Wald would say 0).
    assert gap_standard_error("1 - accuracy", 0.0, 0.0, 300, 60) > 0.01
    # An MSE on n samples: relative standard error sqrt(2 / n).
    assert gap_standard_error("relative MSE", 0.0, 0.5, 10_000, 50) == pytest.approx(0.1, rel=1e-3)
    assert gap_standard_error("loss", 0.1, 0.5, 100, 100) is None
    assert gap_standard_error("1 - accuracy", 0.1, 0.5, None, 100) is None


def test_an_ordinary_gap_for_a_small_validation_set_is_not_overfitting():
    se = gap_standard_error("1 - accuracy", 0.02, 0.10, 300, 60)
    # A 0.08 gap is under 2 standard errors: not reported at all.
    assert read_variance(finding("overfitting", 0.08), se, 60, 2.0, 0.05) is None
    # 0.10 is beyond 2 standard errors but its lower bound is under 0.05: a note, not a warning.
    se = gap_standard_error("1 - accuracy", 0.02, 0.12, 300, 60)
    note = read_variance(finding("overfitting", 0.10), se, 60, 2.0, 0.05)
    assert note.severity is Severity.INFO and "within what 60 validation samples make ordinary" in note.title
    assert note.metrics["gap_lower_bound"] < 0.05
    assert any("could be as small as" in e for e in note.evidence)


def test_a_large_gap_stays_overfitting_even_with_a_small_validation_set():
    se = gap_standard_error("1 - accuracy", 0.0, 0.35, 100, 60)
    kept = read_variance(finding("overfitting", 0.35), se, 60, 2.0, 0.05)
    assert kept.severity is Severity.WARNING and kept.metrics["gap_lower_bound"] > 0.2
    # The same 0.08 gap on 10,000 validation samples is far beyond noise.
    se = gap_standard_error("1 - accuracy", 0.02, 0.10, 10_000, 10_000)
    assert read_variance(finding("overfitting", 0.08), se, 10_000, 2.0, 0.05).severity is Severity.WARNING
    # Other components and unknown sampling models are left alone.
    assert read_variance(finding("underfitting", 0.3), 0.2, 60, 2.0, 0.05).severity is Severity.WARNING
    assert read_variance(finding("overfitting", 0.1), None, None, 2.0, 0.05).severity is Severity.WARNING


def test_a_training_loss_still_falling_is_read_from_its_pace():
    # A language model approaching its entropy floor: falls 0.094 then 0.063.
    assert training_loss_left([3.23, 2.96, 2.804, 2.71, 2.647], 0.02) == pytest.approx(0.048, abs=0.001)
    assert training_loss_left([1.0, 0.5, 0.3, 0.299, 0.2989], 0.02) is None  # converged
    assert training_loss_left([1.0, 0.5, 0.3, 0.31, 0.25], 0.02) is None  # one fall is not a trend
    assert math.isinf(training_loss_left([1.0, 0.9, 0.8], 0.02))  # not slowing at all
    assert training_loss_left([1.0, 0.9], 0.02) is None


def test_underfitting_against_an_unknown_floor_waits_for_a_finished_run():
    losses, vals = [3.23, 2.96, 2.804, 2.71, 2.647], [0.86, 0.78, 0.766, 0.766, 0.766]
    note = read_bias(finding("underfitting", 0.758), floor_known=False, val_unfinished=False, val_errors=vals,
                     train_losses=losses, min_fall=0.02)
    assert note.severity is Severity.INFO and "training was still improving" in note.title
    assert "irreducible_error" in note.title
    assert any("about 4.8% more to go" in e for e in note.evidence)
    # A run that has stopped improving is under-fitting even without a known floor.
    flat = [1.2, 1.1, 1.05, 1.049, 1.0489]
    kept = read_bias(finding("underfitting", 0.3), False, False, vals, flat, 0.02)
    assert kept.severity is Severity.WARNING
    # With a known floor, only a validation pace that can close the gap counts.
    kept = read_bias(finding("underfitting", 0.3), True, False, vals, losses, 0.02)
    assert kept.severity is Severity.WARNING
    closing = read_bias(finding("underfitting", 0.3), True, True, [0.5, 0.4, 0.35], losses, 0.02)
    assert closing.severity is Severity.INFO and "fast enough to close the gap" in closing.title


def _bias_variance(stem, measured=False):
    diagnosis = diagnose_file(ZOO / f"{stem}.py", select=("bias-variance",))
    found = {f.id: f for f in diagnosis.diagnoses}
    return (found, diagnosis.measurements) if measured else found


def test_a_language_model_still_learning_is_not_called_underfitting():
    found, measured = _bias_variance("healthy_markov_lm_still_improving", measured=True)
    # Not even as a note: the unfinished run's errors are measurements, not an under-fitting.
    assert found == {}
    bias, train = measured["bias_variance.bias"], measured["short_run.train_error"]
    assert bias["value"] == pytest.approx(train["value"]) and bias["better"] == "lower"
    assert bias["check"] == "bias-variance" and bias["title"].startswith("bias: its part of the error")


def test_a_small_validation_set_gap_is_not_an_overfitting_warning_but_a_real_one_is():
    healthy, measured = _bias_variance("healthy_digits_small_val_gap", measured=True)
    assert healthy == {}
    gap, val, train = (measured[k] for k in ("bias_variance.variance", "short_run.val_error",
                                             "short_run.train_error"))
    assert gap["value"] == pytest.approx(val["value"] - train["value"])
    # the gap's standard error covers at least the validation error's sampling error
    assert gap["noise"] >= val["noise"] > 0 and gap["value"] < 2 * gap["noise"] + 0.1
    bug = _bias_variance("eval_overfit_small_val_expression_panel")
    assert bug["overfitting"].severity is Severity.WARNING and bug["overfitting"].metrics["gap_lower_bound"] > 0.1
