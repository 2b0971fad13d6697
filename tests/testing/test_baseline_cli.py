"""``--write-baseline``/``--baseline`` and the spec's ``accept`` through the real command line.

Each case is a stage-1 bug of the zoo run with ``probe`` and two checks selected: a few
seconds a run.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_cli

CASE = REPO / "examples" / "bugs" / "dead_mlp_negative_bias.py"  # dead-activations, found by initialization
CHEAP = ("--select", "initialization,gradient-flow", "--device", "cpu")

pytestmark = pytest.mark.slow


def probe_json(target, *args, cwd):
    proc = run_cli("probe", target, *CHEAP, *args, "--format", "json", cwd=cwd)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None


def test_baseline_known_findings_pass_and_a_new_bug_fails(tmp_path):
    proc, _ = probe_json(CASE, "--write-baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "b.json").read_text())
    assert [(f["id"], f["check"]) for f in recorded["findings"]] == [("dead-activations", "initialization")]

    proc, report = probe_json(CASE, "--baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [(f["id"], f.get("baseline")) for f in report["diagnoses"] if f["severity"] != "info"] == [
        ("dead-activations", "known")]
    assert report["baseline"] == {"file": "b.json", "known": 1, "new": 0, "fixed": []}

    # The same file with a second bug: the optimiser only gets the output layer's parameters.
    text = CASE.read_text()
    assert "torch.optim.Adam(params, lr=lr)" in text
    worse = tmp_path / "two_bugs.py"
    worse.write_text(text.replace("torch.optim.Adam(params, lr=lr)", "torch.optim.Adam(list(params)[-2:], lr=lr)"))
    proc, report = probe_json(worse, "--baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    marks = {f["id"]: f.get("baseline") for f in report["diagnoses"] if f["severity"] != "info"}
    assert marks == {"dead-activations": "known", "no-gradient-flow": "new"}
    assert report["baseline"]["new"] == 1

    proc = run_cli("probe", worse, *CHEAP, "--baseline", "b.json", "--format", "markdown", cwd=tmp_path)
    assert proc.returncode == 1
    assert "baseline b.json: 1 known, 1 new, 0 fixed" in proc.stdout


def test_a_missing_baseline_file_exits_2_before_running(tmp_path):
    proc = run_cli("probe", CASE, *CHEAP, "--baseline", "nowhere.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "baseline file nowhere.json does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def _with_accept(tmp_path, accept: str):
    text = CASE.read_text()
    anchor = '"optimizer": lambda params: torch.optim.Adam(params, lr=lr),'
    assert anchor in text
    path = tmp_path / "accepted.py"
    path.write_text(text.replace(anchor, anchor + f"\n        \"accept\": {accept},"))
    return path


def test_spec_accept_shows_the_reason_and_exits_0(tmp_path):
    path = _with_accept(tmp_path, '{"dead-activations": "negative biases are the experiment"}')
    proc, report = probe_json(path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dead = next(f for f in report["diagnoses"] if f["id"] == "dead-activations")
    assert dead["accepted"] == "negative biases are the experiment"
    assert dead["severity"] == "error"  # still reported as what it is
    proc = run_cli("probe", path, *CHEAP, cwd=tmp_path)
    assert proc.returncode == 0
    assert "accepted: negative biases are the experiment" in proc.stdout


def test_spec_accept_with_an_unknown_id_exits_2(tmp_path):
    path = _with_accept(tmp_path, '{"dead-activation": "typo"}')
    proc = run_cli("probe", path, *CHEAP, cwd=tmp_path)
    assert proc.returncode == 2
    assert "'dead-activation', which is not a diagnosis ID (did you mean 'dead-activations'?)" in proc.stderr
    assert "Traceback" not in proc.stderr
