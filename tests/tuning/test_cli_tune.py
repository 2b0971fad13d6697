"""`dldoctor tune` as a user runs it: outputs, --save, --plot, exit codes."""

import json

import pytest
import yaml

# The real `dldoctor tune` in a fresh process.
pytestmark = pytest.mark.slow

pytest.importorskip("optuna")

from tests.conftest import run_cli  # noqa: E402
from tests.tuning.helpers import tiny_spec  # noqa: E402

QUICK = "tune:\n  trials: 5\n  rounds: 2\n  epochs: 2\n  confirm_seeds: 2\n"


def test_json_report_save_plot_and_storage_beside_the_output(make_project, tmp_path):
    path = make_project(tiny_spec(lr=1e-5))
    (tmp_path / "quick.yaml").write_text(QUICK)
    out, best, figure = tmp_path / "out" / "report.json", tmp_path / "best.yaml", tmp_path / "tune.png"
    args = [path, "--config", tmp_path / "quick.yaml", "--device", "cpu", "-f", "json", "-o", out, "--save", best]
    try:
        import matplotlib  # noqa: F401

        args += ["--plot", figure]
    except ImportError:
        figure = None
    proc = run_cli("tune", *args)
    assert proc.returncode == 0, proc.stderr  # lr-too-low is a warning; --fail-on error
    report = json.loads(out.read_text())
    assert report["command"] == "tune" and report["status"] == "warning"
    assert [d["id"] for d in report["diagnoses"]] == ["lr-too-low"]
    assert [c["name"] for c in report["checks"] if c["status"] != "skipped"] == ["lr-range"]
    tuning = report["reports"]["tuning"]
    assert len(tuning["trials"]) == 5 and tuning["metric"] == "val accuracy"
    assert tuning["storage"] == f"sqlite:///{out.parent / 'dldoctor-tune.db'}"
    assert (out.parent / "dldoctor-tune.db").is_file()
    saved = yaml.safe_load(best.read_text())
    assert set(saved["hparams"]) == {"lr", "width"} and saved["optimizer"] == {}
    assert saved["score"]["value"] == pytest.approx(tuning["best"]["score"])
    assert "dldoctor_spec(**yaml.safe_load" in best.read_text()
    if figure is not None:
        assert figure.stat().st_size > 10_000


def test_markdown_and_the_lr_finder_alone(make_project):
    path = make_project(tiny_spec(lr=1e-3))
    proc = run_cli("tune", path, "--lr-finder", "--device", "cpu", "-f", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert "## Tuning" in proc.stdout and "learning-rate range test: suggested learning rate" in proc.stdout
    assert "| # | round |" not in proc.stdout  # no search


def test_usage_errors_exit_2_with_a_message(make_project):
    bad = make_project(tiny_spec(space='{"lr": {"low": 1e-1, "high": 1e-5}}'))
    proc = run_cli("tune", bad, "--device", "cpu")
    assert proc.returncode == 2 and "low must be below high" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("tune", bad, "--lr-finder", "--save", "x.yaml")
    assert proc.returncode == 2 and "--save needs a search" in proc.stderr
