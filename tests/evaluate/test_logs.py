import json

import pytest

from dldoctor.core.config import load_config
from dldoctor.core.errors import UsageError
from dldoctor.loading.metrics_log import canonical, parse_metrics
from dldoctor.readings.bias_variance import log_findings
from tests.conftest import REPO, run_cli

LOGS = REPO / "examples" / "logs"
CONFIG = load_config().values

EXPECTED = {
    "overfitting_from_epoch_8.csv": "overfitting",
    "underfitting_plateau.json": "underfitting",
    "val_overfitting.csv": "val-overfitting",
    "val_overfitting_search.jsonl": "val-overfitting",
    "distribution_shift.csv": "distribution-shift",
    "diverging.csv": "lr-too-high",
    "healthy.csv": None,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_logs(name):
    from dldoctor.core.ranking import rank

    findings = rank(log_findings(parse_metrics(LOGS / name), CONFIG, irreducible=0.02)[0])
    alarms = [f for f in findings if f.severity.value in ("warning", "error")]
    if EXPECTED[name] is None:
        assert alarms == []
    else:
        assert alarms[0].id == EXPECTED[name], [(f.id, f.title) for f in findings]


def test_early_stopping_epoch_is_named():
    findings, report = log_findings(parse_metrics(LOGS / "overfitting_from_epoch_8.csv"), CONFIG)
    assert report["best_epoch"] == 8
    overfit = next(f for f in findings if f.id == "overfitting")
    assert any("lowest" in e and "epoch 8" in e for e in overfit.evidence)
    assert any(fix == "Stop early: validation error is lowest at epoch 8." for fix in overfit.fixes)


@pytest.mark.parametrize("name,key", [
    ("train_loss", "train_loss"), ("val/acc", "val_acc"), ("Validation Accuracy", "val_acc"),
    ("valid_error", "val_error"), ("loss", "train_loss"), ("accuracy", "train_acc"), ("test-acc", "test_acc"),
    ("train_val_acc", "train_val_acc"), ("epoch", "epoch"), ("lr", None),
])
def test_column_names(name, key):
    assert canonical(name) == key


def test_percentages_and_json_forms(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps([{"epoch": 1, "train_acc": 80, "val_acc": 70}, {"epoch": 2, "train_acc": 90,
                                                                              "val_acc": 75}]))
    log = parse_metrics(path)
    assert log.errors("train") == pytest.approx((0.2, 0.1)) and log.epochs == (1, 2)
    path.write_text(json.dumps({"history": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}}))
    assert parse_metrics(path).losses("val") == (1.1, 0.7)


@pytest.mark.parametrize("content,needle", [
    ("", "is empty"),
    ("epoch,lr\n1,0.1\n", "no training or validation metric"),
    ("epoch,train_acc,val_acc\n1,high,0.5\n", "'high' is not a number"),
    ("[1, 2, 3]", "one object per epoch"),
    ('{"epoch": 1}\n{"epoch": ', "line 2 is not JSON"),
    ("train_acc,training_accuracy,val_acc\n0.1,0.2,0.3\n", "both mean train_acc"),
])
def test_malformed_logs_get_clear_errors(tmp_path, content, needle):
    path = tmp_path / ("log.jsonl" if content.startswith(("{", "[")) else "log.csv")
    path.write_text(content)
    with pytest.raises(UsageError) as err:
        parse_metrics(path)
    assert needle in err.value.message


def test_command_from_numbers_and_from_a_log(tmp_path):
    proc = run_cli("bias-variance", "--train", "0.08", "--val", "0.15", "--test", "0.21", "--train-val", "0.09",
                   "--irreducible", "0.02", "--format", "json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert report["diagnoses"][0]["id"] == "underfitting"
    assert report["reports"]["bias_variance"]["components"]["distribution shift"] == pytest.approx(0.06)
    proc = run_cli("bias-variance", "--metrics", LOGS / "val_overfitting.csv")
    assert proc.returncode == 0 and "val-overfitting" in proc.stdout and "error decomposition" in proc.stdout
    proc = run_cli("bias-variance", "--train", "0.1")
    assert proc.returncode == 2 and "--val" in proc.stderr
    proc = run_cli("bias-variance", "--metrics", tmp_path / "missing.csv")
    assert proc.returncode == 2 and "not found" in proc.stderr
    proc = run_cli("bias-variance", "--train", "0.1", "--val", "0.4", "--fail-on", "warning")
    assert proc.returncode == 1
