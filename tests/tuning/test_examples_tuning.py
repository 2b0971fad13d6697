"""The three examples/tuning cases do what the issue asks (full default budget, in-process)."""

import pytest

# Range tests and searches on the shipped examples.
pytestmark = pytest.mark.slow

pytest.importorskip("optuna")

from dldoctor.core.runner import RunOptions  # noqa: E402
from dldoctor.tuning.session import TuneRequest, tune_target  # noqa: E402
from tests.conftest import REPO  # noqa: E402

EXAMPLES = REPO / "examples" / "tuning"


def tune(name):
    return tune_target(RunOptions(target=str(EXAMPLES / name), device="cpu"), TuneRequest())


def test_a_100x_too_small_learning_rate_and_width_are_fixed_by_a_clear_margin():
    diagnosis = tune("digits_small_lr_narrow.py")
    report = diagnosis.reports["tuning"]
    assert report["baseline"]["score"] < 0.3 and report["best"]["score"] > 0.9
    gain = report["gain"]
    assert gain["significant"] and gain["gain"] > 0.5 and gain["gain"] > 10 * gain["se"]
    assert min(gain["best_errors"]) < 0.1  # the gain holds on fresh seeds
    best = report["best"]["params"]
    assert best["lr"] > 1e-3 and best["width"] >= 16
    assert "lr-too-low" in [f.id for f in diagnosis.diagnoses]


def test_no_clear_minimum_is_said_not_invented():
    diagnosis = tune("digits_no_clear_minimum.py")
    lr_report = diagnosis.reports["lr_range"]
    assert lr_report["reading"]["status"] == "none" and lr_report["reading"]["suggestion"] is None
    assert lr_report["summary"].startswith("no clear minimum")
    assert not [f for f in diagnosis.diagnoses if f.id.startswith("lr-")]  # no number, no verdict
    trials = diagnosis.reports["tuning"]["trials"]
    assert trials[0]["params"] == {"lr": 0.05, "width": 32} and len(trials) == 24  # the search still runs


def test_a_good_default_gets_no_claim_of_a_big_improvement():
    report = tune("digits_good_default.py").reports["tuning"]
    gain = report["gain"]
    assert report["baseline"]["score"] > 0.95
    assert gain is None or not gain["significant"]
    if gain is not None:
        assert abs(gain["gain"]) < 3 * gain["se"] + 0.01 and gain["se"] > 0
