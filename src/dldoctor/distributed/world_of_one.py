"""The user's script run alone: a group of one rank, watched for a fixed budget of optimizer steps.

A world size cannot be judged from one run: whether the global batch (or the learning rate) changed
with the number of ranks needs the same script measured at world size 1. Rank 0 of a distributed run
(see ``ddp-scaling-mismatch``) starts ``python -m dldoctor.distributed.world_of_one [-m] TARGET ARGS``
in a fresh process, in its own working directory, with the environment of a group of one that
``torchrun --nproc-per-node 1`` would give (``RANK=0``, ``WORLD_SIZE=1``, ``LOCAL_RANK=0``, a free
``MASTER_PORT`` on 127.0.0.1, a run id of its own; the launcher's other ``TORCHELASTIC_*`` variables
(its agent's store) and dldoctor's ``DLDOCTOR_*`` removed): the script's ``init_process_group`` makes a
group of one, and dldoctor's :func:`~dldoctor.distributed.rank_env` reads no group, so the script is
watched as plain script mode.

The child stops the script at :data:`STEPS` optimizer steps (a step budget, never a time budget) and
writes one JSON line on its stdout: the samples the model was called on at the last step (counted as
the watcher counts them, ``per_rank_batch`` in a rank's record), the ``backward()`` calls per optimizer
step (micro-batches accumulated), and each step's learning rates. Everything else the process writes
(the script's prints, warnings, its worker processes' output) goes to stderr. :data:`TIMEOUT_S` bounds
the whole run (a safety limit: the script never reached its steps); a script that raises at world size
1 (it asserts ``world_size == 2``) gives a :class:`WorldOfOneFailed` with the reason, never a crash.

In a distributed run the last rank measures it (:func:`publish`) while rank 0 runs its checks: that rank
is idle then, waiting for rank 0's exit code. The result goes through the launcher's store, where
:func:`collected` reads it; rank 0 runs the script itself only when no rank published one.

Nothing here imports torch at module level: the parent side only starts a process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Optimizer steps the script is watched for at world size 1.
STEPS = 2
#: Seconds the whole world-of-one run may take (start-up, imports, the script up to its steps).
TIMEOUT_S = 120.0
#: The child's entry point (``python -m ENTRY``).
ENTRY = "dldoctor.distributed.world_of_one"
#: Environment variable prefixes dropped from the child's environment: torchrun's agent and store
#: (``TORCHELASTIC_*``) and dldoctor's own settings for the group it runs in (``DLDOCTOR_*``).
DROPPED_PREFIXES = ("TORCHELASTIC_", "DLDOCTOR_")
#: Lines of the child's stderr kept in a failure's reason, at most.
REASON_LINES = 3


class WorldOfOneFailed(Exception):
    """The script could not be measured at world size 1; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class WorldOfOne:
    """What the script did alone, at its first optimizer steps.

    Attributes:
        per_rank_batch: samples the trained model was called on at the last watched step (the
            micro-batch, with gradient accumulation).
        backwards: ``backward()`` calls per optimizer step (the median over the watched steps; 1
            without accumulation).
        lr: each watched step's learning rate per parameter group, in order.
        steps: optimizer steps watched.
        optimizer: the first optimizer's class name.
        seconds: how long the run took, start-up included.
    """

    per_rank_batch: int
    backwards: int
    lr: tuple[tuple[float, ...], ...]
    steps: int
    optimizer: str = ""
    seconds: float = 0.0

    @property
    def samples_per_step(self) -> int:
        """Samples per optimizer step: the batch times the micro-batches accumulated."""
        return self.per_rank_batch * max(self.backwards, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"per_rank_batch": self.per_rank_batch, "backwards": self.backwards,
                "lr": [list(step) for step in self.lr], "steps": self.steps, "optimizer": self.optimizer,
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorldOfOne:
        return cls(int(data["per_rank_batch"]), int(data.get("backwards", 1) or 1),
                   tuple(tuple(float(v) for v in step) for step in data.get("lr", ())),
                   int(data.get("steps", 0)), str(data.get("optimizer", "")), float(data.get("seconds", 0.0)))


# -- the parent's side ---------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the child's ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def single_env(environ: Mapping[str, str] | None = None, port: int | None = None) -> dict[str, str]:
    """The environment of a group of one rank, from this process's (torchrun's and dldoctor's own
    variables dropped, the group's set as ``torchrun --nproc-per-node 1`` sets them)."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if not k.startswith(DROPPED_PREFIXES)}
    env.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": "0",
                "GROUP_WORLD_SIZE": "1", "ROLE_RANK": "0", "ROLE_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port if port is not None else free_port()),
                # A run id of its own (no agent store: TORCHELASTIC_USE_AGENT_STORE stays unset), so that a
                # framework that asks whether torchrun started it (Lightning) reads this group of one, and says
                # at once when the script cannot run in it, instead of starting processes of its own or
                # waiting for ranks that never come.
                "TORCHELASTIC_RUN_ID": f"dldoctor-world-of-one-{os.getpid()}", "TORCHELASTIC_RESTART_COUNT": "0",
                "TORCHELASTIC_MAX_RESTARTS": "0"})
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def command(target: str, args: Sequence[str] = (), module: bool = False) -> list[str]:
    """The child's command line."""
    return [sys.executable, "-m", ENTRY, *(["-m"] if module else []), target, *args]


def run_world_of_one(target: str, args: Sequence[str] = (), module: bool = False, *, cwd: str | Path | None = None,
                     timeout_s: float | None = None, environ: Mapping[str, str] | None = None) -> WorldOfOne:
    """Run the script (a path, or a module with ``module``) with its arguments as a group of one rank,
    watched for :data:`STEPS` optimizer steps, in a fresh process; what it measured.

    The child runs in a session of its own: at a timeout, or when this process is interrupted while it
    waits (a check's safety limit), the child and whatever it started are killed before this returns.

    Raises:
        WorldOfOneFailed: the script raised or exited before its first optimizer step, the run took
            longer than ``timeout_s`` (default :data:`TIMEOUT_S`), or its output could not be read.
    """
    timeout = TIMEOUT_S if timeout_s is None else timeout_s
    if timeout <= 0:
        raise WorldOfOneFailed("no time was left to run the script at world size 1")
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(command(target, args, module), cwd=str(cwd) if cwd is not None else None,
                                env=single_env(environ), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        raise WorldOfOneFailed(f"could not start the script at world size 1 ({exc})") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise WorldOfOneFailed(f"the script did not reach {STEPS} optimizer steps at world size 1 within "
                               f"{timeout:g} s") from None
    except BaseException:  # interrupted while waiting (Ctrl-C, a check's safety limit): leave nothing behind
        _kill_group(proc)
        raise
    _kill_group(proc, reap=False)  # what the script started and left running (its worker processes)
    result = _parse(out)
    if result is None:
        tail = _tail(err)
        raise WorldOfOneFailed(f"the run at world size 1 exited with code {proc.returncode} without a result"
                               + (f": {tail}" if tail else ""))
    if "error" in result:
        raise WorldOfOneFailed(str(result["error"]))
    try:
        measured = WorldOfOne.from_dict(result)
    except (KeyError, TypeError, ValueError) as exc:
        raise WorldOfOneFailed(f"the run at world size 1 gave an unreadable result ({exc})") from None
    return dataclasses.replace(measured, seconds=time.perf_counter() - started)


def _kill_group(proc: subprocess.Popen[str], reap: bool = True) -> None:
    """End the child's session (the child and what it started), and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if reap:
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            proc.communicate(timeout=10)


def _parse(out: str) -> dict[str, Any] | None:
    """The child's JSON line (the last line of its stdout that is a JSON object)."""
    for line in reversed((out or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _tail(err: str) -> str:
    lines = [line.strip() for line in (err or "").splitlines() if line.strip()]
    return " | ".join(lines[-REASON_LINES:])


# -- measured by the last rank, read by rank 0 ------------------------------------------------------------
#: The store key (under the exchange's prefix) of the last rank's measurement.
KEY = "world_of_one"


def publish(exchange: Any, target: str, args: Sequence[str] = (), module: bool = False) -> None:
    """The last rank of a group, once its own loop is over: measure the script alone and put the result
    (or the reason it failed) in the launcher's store for rank 0."""
    if exchange.store is None or exchange.env.rank != exchange.env.world_size - 1:
        return
    try:
        result: dict[str, Any] = {"ok": run_world_of_one(target, args, module, cwd=os.getcwd()).to_dict()}
    except WorldOfOneFailed as exc:
        result = {"error": exc.reason}
    with contextlib.suppress(Exception):
        exchange.store.set(exchange.prefix + KEY, json.dumps(result).encode())


def collected(timeout_s: float, exchange: Any = None) -> WorldOfOne | None:
    """Rank 0: the last rank's measurement, waiting for it up to ``timeout_s``; None when this process is
    not a rank, there is no store, the last rank left without one (a hung group) or none came in time
    (rank 0 then measures it itself). ``exchange``: this rank's (by default, the process's own).

    Raises:
        WorldOfOneFailed: the last rank could not measure the script (its reason).
    """
    if exchange is None:
        from dldoctor.distributed import rank_env
        from dldoctor.distributed.exchange import exchange_for

        env = rank_env()
        if env is None:
            return None
        exchange = exchange_for(env)
    store = getattr(exchange, "store", None)
    if store is None:
        return None
    last = exchange.env.world_size - 1
    key, gone = exchange.prefix + KEY, exchange.prefix + f"gone/{last}"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if store.check([key]):
                result = json.loads(bytes(store.get(key)).decode())
                if "error" in result:
                    raise WorldOfOneFailed(str(result["error"]))
                return WorldOfOne.from_dict(result["ok"])
            if store.check([gone]):
                return None
            time.sleep(0.1)
    except (RuntimeError, ValueError, KeyError, TypeError):
        return None
    return None


# -- the child's side -----------------------------------------------------------------------------------
def measure(target: str, args: Sequence[str] = (), module: bool = False) -> dict[str, Any]:
    """In the child: watch the script for :data:`STEPS` optimizer steps; the JSON-able result, or
    ``{"error": reason}``."""
    from dldoctor.core.errors import DldoctorError
    from dldoctor.loading.script.execute import watch_script
    from dldoctor.loading.script.watch import Budget

    name = f"-m {target}" if module else target
    try:
        watcher = watch_script(target, args, module, Budget(min_steps=STEPS, max_steps=STEPS, after_boundary=0))
    except DldoctorError as exc:
        return {"error": f"at world size 1, {exc.message}"}
    loop = watcher.record
    first = [s for s in loop.steps if s.optimizer == 0]
    if not first:
        return {"error": f"at world size 1, {name} took no optimizer step"
                         + (f" ({loop.error})" if loop.error else "")}
    samples = int(getattr(watcher, "_samples", 0) or 0)
    if samples <= 0:
        return {"error": f"at world size 1, the batch {name}'s model was called on could not be read"}
    backwards = [s.backwards for s in first if s.backwards > 0]
    return WorldOfOne(per_rank_batch=samples, backwards=int(statistics.median_low(backwards)) if backwards else 1,
                      lr=tuple(s.lr for s in first), steps=len(first),
                      optimizer=loop.optimizers[0].class_name if loop.optimizers else "").to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dldoctor.distributed.world_of_one [-m] TARGET [ARGS...]``: one JSON line on stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    module = bool(argv) and argv[0] == "-m"
    if module:
        argv = argv[1:]
    if not argv:
        print(json.dumps({"error": "usage: python -m dldoctor.distributed.world_of_one [-m] TARGET [ARGS...]"}))
        return 2
    # Our stdout is the result alone: everything else that writes to file descriptor 1 (the script's
    # prints, its worker processes, C libraries) goes to stderr.
    sys.stdout.flush()
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        result = measure(argv[0], argv[1:], module)
    except BaseException as exc:  # dldoctor's own failure: said as the reason, not a traceback
        result = {"error": f"at world size 1, dldoctor's run failed: {type(exc).__name__}: {exc}"}
    result_out.write(json.dumps(result, default=str) + "\n")
    result_out.flush()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Threads and process groups the script left behind must not keep this process alive.
    os._exit(code)
