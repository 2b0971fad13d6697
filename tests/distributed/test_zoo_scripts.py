"""The distributed zoo (examples/distributed): ordinary torchrun scripts that really run.

Each script declares the diagnosis it stands for (``# EXPECT: <id>`` or ``healthy``) and its
process count (``# NPROC: 2``). Here every script is launched with torch's own elastic launcher
(``python -m torch.distributed.run``, what ``torchrun`` runs) on gloo, without dldoctor: the
non-hang scripts must finish with exit status 0, and the hang script must really hang (both ranks
alive, rank 0 past its first epoch, no exit) until it is stopped, leaving no process behind.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

ZOO_DIR = REPO / "examples" / "distributed"
SCRIPTS = sorted(ZOO_DIR.glob("*.py"))
HEADER = re.compile(r"^#\s*EXPECT:\s*([\w-]+)\s*$", re.M)
NPROC = re.compile(r"^#\s*NPROC:\s*(\d+)\s*$", re.M)
#: A script that must hang under plain torchrun: it is stopped instead of awaited.
HANG = "ddp-hang"
RUN_TIMEOUT_S = 60


def header(path: Path) -> tuple[str, int]:
    """The ``EXPECT`` ID and the ``NPROC`` process count of a zoo script (first 5 lines)."""
    head = "\n".join(path.read_text().splitlines()[:5])
    expect, nproc = HEADER.search(head), NPROC.search(head)
    assert expect, f"{path.name}: no '# EXPECT: <id>' header in the first 5 lines"
    assert nproc, f"{path.name}: no '# NPROC: <n>' header in the first 5 lines"
    return expect.group(1), int(nproc.group(1))


def needs_gloo() -> None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available on this platform")
    if sys.platform == "win32":
        pytest.skip("torchrun's worker handling is tested on POSIX only")


def needs_imports(path: Path) -> None:
    """Skip a script whose optional test dependency (Lightning) is missing."""
    if re.search(r"^import lightning\b|^from lightning\b", path.read_text(), re.M):
        pytest.importorskip("lightning", reason="optional test dependency (requirements-optional.txt)")


class Launch:
    """``python -m torch.distributed.run --standalone --nproc-per-node N path``, its output read as it comes."""

    def __init__(self, path: Path, nproc: int) -> None:
        self.proc = torchrun(path, nproc)
        self.lines: list[str] = []
        self.workers: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def watch(self, seconds: float, until: str | None = None) -> None:
        """Note the ranks' pids until the launcher exits, a line starting with ``until`` shows, or time is up."""
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.workers |= descendants(self.proc.pid)
            if until is not None and any(line.startswith(until) for line in self.lines):
                return
            time.sleep(0.2)

    def output(self) -> str:
        self._reader.join(timeout=5)
        return "".join(self.lines)[-3000:]

    def stop(self) -> None:
        stop(self.proc, self.workers)


def torchrun(path: Path, nproc: int) -> subprocess.Popen[str]:
    """Start torch's elastic launcher on ``path`` in a session of its own, output merged into one pipe."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    return subprocess.Popen(  # --standalone: a rendezvous on a free port, so runs may overlap
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop(proc: subprocess.Popen[str], workers: set[int]) -> None:
    """Stop torchrun (it terminates its workers on SIGTERM), then kill whatever of ours is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in workers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_zoo_script_header(path):
    """A valid header (a catalogue ID or healthy, 2 processes), a docstring, and no dldoctor code."""
    from dldoctor.core import catalogue

    expect, nproc = header(path)
    assert expect == "healthy" or catalogue.is_builtin(expect), f"{path.name}: unknown ID {expect!r}"
    assert nproc == 2
    tree = ast.parse(path.read_text())
    assert (ast.get_docstring(tree) or "").strip(), f"{path.name}: no docstring saying what the case is"
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "dldoctor" not in imported, f"{path.name}: a zoo script is user code, it must not import dldoctor"


def test_zoo_covers_every_distributed_id():
    """One buggy script per distributed-training ID of the catalogue, and at least 4 healthy ones."""
    from dldoctor.core.catalogue import CATALOGUE
    from dldoctor.core.ids import Family

    expected = {str(entry.id.value if hasattr(entry.id, "value") else entry.id)
                for entry in CATALOGUE.values() if entry.family == Family.DISTRIBUTED}
    declared = [header(p)[0] for p in SCRIPTS]
    assert expected, "the catalogue has no distributed-training entries"
    assert expected <= set(declared), f"no zoo script for {sorted(expected - set(declared))}"
    assert declared.count("healthy") >= 4, declared


@pytest.mark.slow
def test_hang_script_hangs_under_torchrun():
    """The hang case really hangs: rank 0 finishes epoch 1, then neither rank exits until stopped."""
    needs_gloo()
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding the ranks' processes reads /proc (Linux)")
    (path,) = [p for p in SCRIPTS if header(p)[0] == HANG]
    launch = Launch(path, header(path)[1])
    try:
        launch.watch(RUN_TIMEOUT_S, until="epoch 1:")  # rank 0's evaluation, just before its barrier
        assert any(line.startswith("epoch 1:") for line in launch.lines), launch.output()
        launch.watch(5)  # a healthy run finishes its 2 remaining short epochs well within this
        assert launch.proc.poll() is None, f"exited {launch.proc.returncode} instead of hanging:\n{launch.output()}"
        ranks = [p for p in launch.workers if alive(p) and path.name in cmdline(p)]
        assert len(ranks) == 2, "both ranks must still be alive, each waiting at its collective"
    finally:
        launch.stop()
    assert not any(alive(p) for p in launch.workers), "a rank outlived the stopped launcher"
