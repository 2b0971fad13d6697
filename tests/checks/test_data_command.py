"""``dldoctor data``: the data checks alone, through the real command, with the shared formats and exit codes."""

import subprocess
import sys

import pytest

from tests.checks.data_cases import MLP, TEMPLATE, TRAIN, VAL, blobs
from tests.conftest import REPO, run_cli, run_json

LEAKY = blobs(600, 8, 3) + "Xv, yv = X[:150], y[:150]\n"


def project(make_project, data):
    return make_project(TEMPLATE.format(data=data, model=MLP.format(d=8, k=3), train=TRAIN,
                                        loss="nn.CrossEntropyLoss()", extra=VAL))


def test_data_runs_the_data_stage_only(make_project):
    proc, report = run_json("data", project(make_project, LEAKY))
    assert proc.returncode == 0, proc.stderr
    assert report["command"] == "data" and report["diagnoses"][0]["id"] == "train-val-leakage"
    ran = {c["stage"] for c in report["checks"] if c["status"] != "skipped"}
    assert ran == {"data"}


@pytest.mark.slow
def test_exit_codes_follow_fail_on(make_project):
    path = project(make_project, LEAKY)
    assert run_cli("data", path, "--fail-on", "warning").returncode == 1
    clean = project(make_project, blobs(600, 8, 3) + blobs(150, 8, 3, seed=1, name="v"))
    assert run_cli("data", clean, "--fail-on", "warning").returncode == 0


def test_max_samples_option(make_project):
    _, report = run_json("data", project(make_project, LEAKY), "--max-samples", "200")
    [leak] = [d for d in report["diagnoses"] if d["id"] == "train-val-leakage"]
    assert any("200 of the 600 training samples were read" in e for e in leak["evidence"])


def test_help_lists_the_command_without_importing_torch():
    code = ("import sys; from typer.testing import CliRunner; from dldoctor.cli.app import app; "
            "r = CliRunner().invoke(app, ['data', '--help']); assert r.exit_code == 0 and '--max-samples' in r.output; "
            "assert 'torch' not in sys.modules; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr
