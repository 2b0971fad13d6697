"""The distributed zoo under ``dldoctor run --nproc-per-node 2``: every bug named first, the healthy scripts
clean, the hang reported within a minute of hanging, and no rank left behind.

Each script runs the default ``run`` (every check, the JSON report) with 2 gloo ranks, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.distributed.test_zoo_scripts import SCRIPTS, header, needs_gloo, needs_imports

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DLDOCTOR_GATHER_TIMEOUT_S": "120", "PYTHONUNBUFFERED": "1"}
for _key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
    ENV.pop(_key, None)
#: The must-show: the hang is diagnosed within this many seconds of the moment the ranks part ways.
HANG_REPORTED_WITHIN_S = 60


class Run:
    """``dldoctor run SCRIPT --nproc-per-node N --format json``, stderr read as it comes (with times)."""

    def __init__(self, path: Path, nproc: int, cwd: Path) -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dldoctor", "run", str(path), "--nproc-per-node", str(nproc), "--format", "json",
             "--fail-on", "never"],
            cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))

    def finish(self, timeout: float = 300) -> dict:
        # Not communicate(): it would read stderr too, taking lines from the thread that times them.
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.append(stdout.read()), daemon=True)
        reader.start()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
            pytest.fail(f"no report within {timeout} s:\n{self.stderr()}")
        self.ended = time.monotonic()
        reader.join(timeout=10)
        self._reader.join(timeout=5)
        out = "".join(chunks)
        assert out.strip(), f"no report on stdout; stderr:\n{self.stderr()}"
        return json.loads(out)

    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)[-4000:]

    def first(self, prefix: str) -> float | None:
        return next((t for t, line in self.lines if line.startswith(prefix)), None)


def _left(folder: Path, script: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], check=False, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "dldoctor" in line and str(script) in line and "pytest" not in line]


@pytest.mark.slow
@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_distributed_zoo_diagnosis(path: Path, tmp_path: Path) -> None:
    needs_gloo()
    needs_imports(path)
    expect, nproc = header(path)
    run = Run(path, nproc, tmp_path)
    report = run.finish()
    assert run.proc.returncode == 0, run.stderr()
    assert report["reports"]["ranks"]["world_size"] == nproc
    ranked = [(d["id"], d["severity"]) for d in report["diagnoses"] if not d.get("explained_by")]
    flagged = [i for i, severity in ranked if severity in ("error", "warning")]
    if expect == "healthy":
        assert not flagged, f"{path.name}: a healthy script drew {ranked}"
    else:
        assert flagged and flagged[0] == expect, f"{path.name}: expected {expect} first, got {ranked}"
    if expect == "ddp-hang":
        finding = next(d for d in report["diagnoses"] if d["id"] == "ddp-hang")
        text = " ".join([finding["title"], *finding["evidence"]])
        assert "rank 0 waits in torch.distributed.barrier()" in text, text
        assert "rank 1 waits in backward()" in text, text
        parted = run.first("epoch 1:")  # rank 0 prints it just before its barrier
        assert parted is not None, run.stderr()
        assert run.ended - parted <= HANG_REPORTED_WITHIN_S, f"reported {run.ended - parted:.0f} s after the hang"
    time.sleep(1)
    assert not _left(tmp_path, path), _left(tmp_path, path)
