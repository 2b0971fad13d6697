"""``dldoctor run train.py --nproc-per-node N -- ARGS``: every rank under torch's own elastic launcher.

The command is handed to ``torch.distributed.run`` (the code behind ``torchrun``) as
``torchrun --nproc-per-node N --max-restarts 0 -m dldoctor run train.py ... -- ARGS``: the same
launcher, the same environment in each rank (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), the same
store, as a user's own ``torchrun -m dldoctor run train.py`` gets. Each rank runs script mode on its
own (see :mod:`dldoctor.cli.run`); rank 0 writes the report to this process's stdout and files (the
ranks inherit them) and its exit code to a file named in ``DLDOCTOR_RANK0_EXIT_FILE``; every rank then
exits 0 (the others once they have read rank 0's code from the store), so that the launcher reports no
failure of its own, and this process exits with the code in the file. A rank that crashed, or that rank 0
had to end (it never read the code), makes the launcher raise ``ChildFailedError``: the code in the file
is still rank 0's when it wrote one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dldoctor.distributed import EXIT_FILE_ENV

_NPROC_FLAGS = ("--nproc-per-node", "--nproc_per_node")


def rank_argv(argv: Sequence[str]) -> list[str]:
    """The command line each rank runs: this one without ``--nproc-per-node N`` (before ``--`` only)."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        if arg in _NPROC_FLAGS:
            i += 2
            continue
        if any(arg.startswith(flag + "=") for flag in _NPROC_FLAGS):
            i += 1
            continue
        out.append(arg)
        i += 1
    return out


class LaunchFailed(Exception):
    """The group ended without rank 0's exit code (a rank crashed or was killed)."""


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m dldoctor <argv>`` in ``nproc`` ranks under ``torch.distributed.run``; rank 0's exit code.

    Raises:
        LaunchFailed: no rank 0 exit code came back; the message says which rank failed how.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    with tempfile.TemporaryDirectory(prefix="dldoctor-ranks-") as folder:
        exit_file = Path(folder) / "rank0-exit-code"
        saved = os.environ.get(EXIT_FILE_ENV)
        os.environ[EXIT_FILE_ENV] = str(exit_file)
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # what torchrun sets, without its warning
        failure = ""
        try:
            torchrun(parse_args(["--nproc-per-node", str(nproc), "--max-restarts", "0",
                                 "--monitor-interval", "0.2", "-m", "dldoctor", *argv]))
        except ChildFailedError as exc:
            first = min(exc.failures.items(), key=lambda kv: kv[1].timestamp) if exc.failures else None
            if first is not None:
                _, info = first
                failure = f"local rank {info.local_rank} exited with code {info.exitcode}"
            else:
                failure = str(exc)
        finally:
            if saved is None:
                os.environ.pop(EXIT_FILE_ENV, None)
            else:
                os.environ[EXIT_FILE_ENV] = saved
        try:
            return int(exit_file.read_text().strip())
        except (OSError, ValueError):
            raise LaunchFailed(failure or "rank 0 ended without a report") from None
