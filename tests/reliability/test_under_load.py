"""The same diagnosis on a busy machine: a sample of the zoo, unloaded and slowed down.

Each case runs once as it is, then again with one busy process per core the run may
use, each pinned to its core beside the run (a tight Python loop: the scheduler gives
the run about half of every core, so every step, loader wait and evaluation takes
about twice as long). The verdicts read fixed work (steps, samples), so the ranked
IDs and the status must not move. The sample covers the stages that train: a
short-run bug (compare/evaluate), an overfit-stage bug, a healthy control through
the overfit, compare and evaluate stages, and the shipped digits example.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from dldoctor.core.stage import Stage
from tests.conftest import REPO, diagnose_file

# Busy processes pinned to every core: run alone (make test's serial phase), never beside other tests.
pytestmark = [pytest.mark.slow, pytest.mark.serial]

ZOO = REPO / "examples" / "bugs"
CASES = [
    (ZOO / "eval_underfit_weight_decay_teacher.py", (Stage.COMPARE, Stage.EVALUATE)),
    (ZOO / "fit_lr_high_mlp_sgd.py", (Stage.OVERFIT,)),
    (ZOO / "healthy_eval_slow_sgd_digits.py", (Stage.OVERFIT, Stage.COMPARE, Stage.EVALUATE)),
    (REPO / "examples" / "digits" / "train.py", (Stage.OVERFIT, Stage.COMPARE, Stage.EVALUATE)),
]


@contextlib.contextmanager
def busy_machine():
    """One process spinning on each core this process may run on, pinned there; always stopped."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    spinners: list[subprocess.Popen] = []
    try:
        for core in cores:
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            spinners.append(spinner)
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(spinner.pid, {core})
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def outcome(diagnosis):
    return diagnosis.status, [(f.id, f.severity.value) for f in diagnosis.diagnoses]


def test_the_busy_processes_run_beside_the_run_and_always_stop():
    # The block is the test: busy_machine must stop its processes when its body raises.
    with pytest.raises(RuntimeError), busy_machine() as spinners:  # noqa: PT012
        assert len(spinners) >= 1 and all(s.poll() is None for s in spinners)
        if hasattr(os, "sched_getaffinity"):
            assert {c for s in spinners for c in os.sched_getaffinity(s.pid)} == os.sched_getaffinity(0)
        raise RuntimeError("a failing case")
    assert all(s.returncode is not None for s in spinners)


@pytest.mark.parametrize("path,stages", CASES, ids=[p.stem if p.parent == ZOO else p.parent.name for p, _ in CASES])
def test_the_same_diagnosis_under_load(path, stages):
    unloaded = diagnose_file(path, stages=stages)
    with busy_machine():
        loaded = diagnose_file(path, stages=stages)
    assert outcome(loaded) == outcome(unloaded), (
        [(f.id, f.title, f.evidence) for f in unloaded.diagnoses if f.severity.value != "info"],
        [(f.id, f.title, f.evidence) for f in loaded.diagnoses if f.severity.value != "info"])
    assert all(c.status.value in ("passed", "failed", "skipped") for c in loaded.checks), \
        [(c.name, c.reason) for c in loaded.checks if c.status.value == "errored"]
