"""Several `dldoctor tune` workers share one study: on SQLite here, on PostgreSQL in CI.

CI (`.ci/run`) starts a throw-away PostgreSQL server and exports its URL as
DLDOCTOR_TEST_POSTGRES_URL; without it the PostgreSQL test is skipped.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

# Two `dldoctor tune` processes share a study.
pytestmark = pytest.mark.slow

pytest.importorskip("optuna")

from tests.conftest import REPO  # noqa: E402
from tests.tuning.helpers import tiny_spec  # noqa: E402

TRIALS = 10

#: Both workers block at import until the test releases them, so they start together.
BARRIER = """
import os as _os, pathlib as _pathlib, time as _time
_gate = _pathlib.Path(_os.environ["TUNE_BARRIER"])
(_gate / f"ready-{_os.getpid()}").touch()
_until = _time.time() + 120
while not (_gate / "go").exists() and _time.time() < _until:
    _time.sleep(0.05)
"""

CONFIG = "tune:\n  epochs: 4\n  confirm_seeds: 0\n"


def run_workers(make_project, tmp_path, storage: str, study: str) -> list[dict]:
    path = make_project(BARRIER + tiny_spec(lr=1e-3))
    (tmp_path / "tune.yaml").write_text(CONFIG)
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "TUNE_BARRIER": str(gate), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dldoctor", "tune", str(path), "--storage", storage, "--study", study,
               "--trials", str(TRIALS), "--config", str(tmp_path / "tune.yaml"), "--device", "cpu", "-f", "json"]
    workers = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    until = time.time() + 120
    while len(list(gate.glob("ready-*"))) < 2 and time.time() < until:
        time.sleep(0.05)
    (gate / "go").touch()
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode in (0, 1), err
        reports.append(json.loads(out)["reports"]["tuning"])
    return reports


def check_shared(reports: list[dict]) -> None:
    last = max(reports, key=lambda r: sum(t["state"] != "running" for t in r["trials"]))
    numbers = [t["number"] for t in last["trials"]]
    assert numbers == list(range(len(numbers)))  # one numbering across workers
    assert TRIALS <= len(numbers) <= TRIALS + 1  # a worker stops once the study holds --trials
    assert len({t["worker"] for t in last["trials"]}) == 2  # both workers ran trials
    assert all(r["study"] == last["study"] for r in reports)
    finished = {t["number"]: t["params"] for t in last["trials"] if t["state"] != "running"}
    for r in reports:  # each worker's report sees the other's trials
        for t in r["trials"]:
            if t["state"] != "running" and t["number"] in finished:
                assert t["params"] == finished[t["number"]]


def test_two_workers_share_a_sqlite_study(make_project, tmp_path):
    check_shared(run_workers(make_project, tmp_path, str(tmp_path / "trials.db"), "shared"))


@pytest.mark.skipif(not os.environ.get("DLDOCTOR_TEST_POSTGRES_URL"),
                    reason="set DLDOCTOR_TEST_POSTGRES_URL (CI starts a PostgreSQL server) to run it")
def test_two_workers_share_a_postgresql_study(make_project, tmp_path):
    study = f"ci-{uuid.uuid4().hex[:8]}"
    check_shared(run_workers(make_project, tmp_path, os.environ["DLDOCTOR_TEST_POSTGRES_URL"], study))
