"""The run's own controls: the user's sys.argv, Ctrl-C, RNG states, and coverage deciding status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from dldoctor.core.diagnosis import CheckResult, Diagnosis
from dldoctor.core.errors import ExitCode
from dldoctor.core.finding import Finding
from dldoctor.core.severity import FailOn
from tests.conftest import HEALTHY_BODY, REPO, diagnose_file, run_cli, run_json

ARGV_SCRIPT = """\
import argparse
import sys

SEEN_ARGV = list(sys.argv)
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
ARGS = parser.parse_args()  # at import, as many scripts do
""" + HEALTHY_BODY


def test_the_target_sees_its_own_argv_and_dldoctors_is_restored(make_project):
    path = make_project(ARGV_SCRIPT)
    before = list(sys.argv)
    diagnosis = diagnose_file(path, stages=None, select=("forward-pass",))
    assert sys.argv == before
    assert diagnosis.status == "healthy", [f.title for f in diagnosis.diagnoses]
    # the module is named after the file unless another test's "train" module holds that name
    module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(path.resolve()))
    assert [str(path)] == module.SEEN_ARGV


def test_a_script_parsing_argv_at_import_runs_under_the_cli(make_project):
    path = make_project(ARGV_SCRIPT)
    proc, report = run_json("probe", path, "--select", "forward-pass", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "usage:" not in proc.stderr and "unrecognized arguments" not in proc.stderr
    assert report["status"] == "healthy"


# ------------------------------------------------------------------ Ctrl-C

@pytest.mark.serial  # the signal must land while the run is still going: not beside other tests' load
def test_sigint_stops_the_run_with_a_word_and_a_partial_report(tmp_path):
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        # Ctrl-C as from a terminal: a background job (`.ci/run &`) hands its children SIGINT
        # ignored, and Python then installs no KeyboardInterrupt handler; this restores it.
        [sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "runpy.run_module('dldoctor', run_name='__main__', alter_sys=True)",
         "run", str(REPO / "examples" / "digits" / "train.py"), "-v",
         "--format", "json", "--output", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    try:
        finished = 0
        for line in proc.stderr:  # -v prints one line per finished check: interrupt after the second
            if line.strip().startswith("run"):
                finished += 1
            if finished >= 2:
                break
        assert proc.poll() is None, f"the run ended before it could be interrupted (exit {proc.returncode})"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    report = json.loads(out.read_text())
    assert report["status"] == "incomplete"
    assert report["coverage"]["interrupted"] is True
    assert 2 <= report["coverage"]["checks"] < 26
    assert report["reports"]["interrupted"]["during"]


SLOW_SCRIPT = """\
import time
import torch
from torch import nn

model = nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100000):
    opt.zero_grad()
    nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 2, (8,))).backward()
    opt.step()
    print("step", step, flush=True)
    time.sleep(0.02)
"""


@pytest.mark.serial
def test_sigint_in_a_watched_script_stops_cleanly(tmp_path):
    """Ctrl-C while script mode watches the user's loop: one line, exit 130, no traceback."""
    path = tmp_path / "train.py"
    path.write_text(SLOW_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "runpy.run_module('dldoctor', run_name='__main__', alter_sys=True)",
         "run", str(path), "--watch-steps", "100000", "--format", "json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD": "1"})
    try:
        for line in proc.stderr:  # the script's prints go to stderr
            if line.startswith("step 3"):
                break
        assert proc.poll() is None, f"the script ended before it could be interrupted (exit {proc.returncode})"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted before any check ran" in err and "Traceback" not in err
    assert out == ""


# -------------------------------------------------------------- RNG states

RNG_PROBE = """
import random, sys
import numpy as np
import torch
import dldoctor

def states():
    return (random.getstate(), np.random.get_state()[1].tolist(), np.random.get_state()[2],
            torch.random.get_rng_state().tolist())

random.seed(11); np.random.seed(12); torch.manual_seed(13)
for call in range(2):
    before = states()
    diagnosis = dldoctor.diagnose(sys.argv[1], device="cpu", select=("forward-pass", "numerics"))
    after = states()
    print(call, diagnosis.status, [a == b for a, b in zip(before, after)])
    random.random(); np.random.rand(); torch.rand(1)  # the caller goes on drawing
"""

RNG_TARGET = """\
import random
import numpy as np
random.random(); np.random.rand(); torch.rand(3)  # the user's module draws at import
""" + HEALTHY_BODY.replace('"model": Net,', '"model": lambda: (random.random(), np.random.rand(), Net())[2],')


def test_the_python_api_restores_all_three_rng_states_on_every_call(make_project, tmp_path):
    target = make_project(RNG_TARGET)
    script = tmp_path / "probe_rng.py"
    script.write_text(RNG_PROBE)
    proc = subprocess.run([sys.executable, str(script), str(target)], capture_output=True, text=True, check=False,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines == ["0 healthy [True, True, True, True]", "1 healthy [True, True, True, True]"], proc.stdout


# ------------------------------------------------------- coverage and status

def _diagnosis(*findings: Finding, checks=()) -> Diagnosis:
    return Diagnosis("0", "t.py", tuple(findings), tuple(checks))


INCOMPLETE = Finding("check-incomplete", "warning", 1.0, "batch-mixing could not finish", check="batch-mixing")


def test_an_incomplete_run_is_never_healthy_and_exits_1_unless_allowed():
    d = _diagnosis(INCOMPLETE, checks=(CheckResult("batch-mixing", "run", "errored", 0.1, "why"),))
    assert d.status == "incomplete"
    assert d.exit_code(FailOn.ERROR) is ExitCode.FINDINGS
    assert d.exit_code(FailOn.NEVER) is ExitCode.FINDINGS  # --fail-on picks severities, not coverage
    assert d.exit_code(FailOn.ERROR, allow_incomplete=True) is ExitCode.OK
    assert d.coverage["errored"] == 1 and d.coverage["incomplete"] == ["batch-mixing"]


def test_an_error_finding_outranks_incompleteness_in_the_status():
    error = Finding("lr-too-high", "error", 0.9, "loss explodes")
    assert _diagnosis(INCOMPLETE, error).status == "error"
    warning = Finding("lr-too-low", "warning", 0.9, "slow")
    assert _diagnosis(INCOMPLETE, warning).status == "incomplete"


def test_a_user_caused_hang_or_any_entrypoint_error_exits_2():
    hang = Finding("check-incomplete", "warning", 1.0, "hung", metrics={"fatal": True, "user_code": True})
    assert _diagnosis(hang).exit_code(FailOn.NEVER) is ExitCode.USAGE
    late = Finding("entrypoint-error", "error", 1.0, "iterating the train_loader raised at batch 3")
    assert _diagnosis(late).exit_code(FailOn.NEVER) is ExitCode.USAGE


CRASHES_ON_SLICES = HEALTHY_BODY.replace(
    "        return self.fc2(torch.relu(self.fc1(x)))",
    "        if x.shape[0] < 16:  # breaks on the small slices some checks take\n"
    "            raise RuntimeError('this model needs 16 samples or more')\n"
    "        return self.fc2(torch.relu(self.fc1(x)))")


@pytest.mark.slow
def test_a_check_broken_by_the_users_model_makes_the_run_incomplete(make_project):
    path = make_project(CRASHES_ON_SLICES)
    proc, report = run_json("probe", path)
    assert proc.returncode == 1, proc.stderr
    assert report["status"] == "incomplete"
    incomplete = [d for d in report["diagnoses"] if d["id"] == "check-incomplete"]
    assert incomplete and all("needs 16 samples or more" in d["title"] for d in incomplete)
    assert any(d["location"].startswith("train.py:") for d in incomplete)  # the user's line
    assert report["coverage"]["errored"] == len(report["coverage"]["incomplete"]) >= 1
    relaxed = run_cli("probe", path, "--allow-incomplete", "--format", "json")
    assert relaxed.returncode == 0, relaxed.stderr
    assert json.loads(relaxed.stdout)["status"] == "incomplete"


# ------------------------------------------------------------------ nothing examined

def test_the_python_api_takes_stage_names_and_rejects_unknown_ones(make_project):
    import dldoctor
    from dldoctor.core.errors import DldoctorError

    path = make_project(HEALTHY_BODY)
    diagnosis = dldoctor.diagnose(path, device="cpu", stages=("run",), select=("forward-pass",))
    assert [c.name for c in diagnosis.checks if c.status.value == "passed"] == ["forward-pass"]
    assert diagnosis.status == "healthy"
    with pytest.raises(DldoctorError, match="unknown stage 'overfitting'"):
        dldoctor.diagnose(path, device="cpu", stages=("run", "overfitting"))


def test_a_run_in_which_every_check_was_skipped_is_not_healthy():
    skipped = tuple(CheckResult(name, "data", "skipped", 0.0, "the spec has no val_loader")
                    for name in ("train-val-leakage", "data-shift"))
    diagnosis = _diagnosis(checks=skipped)
    assert diagnosis.status == "incomplete"
    assert diagnosis.exit_code(FailOn.NEVER) == ExitCode.FINDINGS
    assert diagnosis.exit_code(FailOn.NEVER, allow_incomplete=True) == ExitCode.OK
    ran = _diagnosis(checks=(*skipped, CheckResult("forward-pass", "run", "passed", 0.1)))
    assert ran.status == "healthy"
