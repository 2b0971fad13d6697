"""Run a training script as ``python train.py`` (or ``python -m pkg.train``) would, watched.

``sys.argv`` is the script and its arguments, the script's folder is first on
``sys.path``, the working directory is unchanged; all three (and ``__main__``) are put
back afterwards. What the script prints goes to stderr, so that ``--format json`` on
stdout stays parseable. The script stops at the step budget (:class:`StopScript`, raised
from inside its own ``optimizer.step()``), when it ends, or when it raises.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.script.record import WatchedLoop
from dldoctor.loading.script.watch import Budget, StopScript, Watcher
from dldoctor.loading.user_traceback import exception_line, format_user_traceback


@contextlib.contextmanager
def _as_main(argv: list[str], folder: Path | None) -> Iterator[None]:
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = argv
    if folder is not None:
        sys.path.insert(0, str(folder))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def watch_script(target: str, args: Sequence[str] = (), module: bool = False,
                 budget: Budget | None = None, step_monitor: Callable[[Any], Any] | None = None) -> Watcher:
    """Run the script under a :class:`Watcher` and return it with its record filled in.

    Raises :class:`EntrypointError` when the script is missing, or exits or raises before
    its first optimizer step (its traceback trimmed to its own frames).
    """
    budget = budget or Budget()
    if module:
        name = f"-m {target}"
        folder = None
        roots: tuple[Path, ...] = (Path.cwd(),)
    else:
        path = Path(target)
        if not path.is_file():
            raise EntrypointError(f"{target}: no such file", hint="Give the path of your training script, "
                                  "e.g. dldoctor run train.py -- --epochs 3")
        name, folder = target, path.resolve().parent
        roots = (folder,)
    record = WatchedLoop(script=name, argv=[target, *args])
    watcher = Watcher(record, budget, roots, step_monitor)
    argv = [str(Path(target).resolve()) if not module else target, *args]
    from dldoctor.distributed import rank_env

    env = rank_env()
    if env is None:
        return _watch(watcher, target, module, name, argv, folder, roots)
    from dldoctor.distributed.exchange import exchange_for, release_group
    from dldoctor.distributed.rank_record import RankProbe

    watcher.rank_probe = RankProbe(env)
    try:
        return _watch(watcher, target, module, name, argv, folder, roots)
    finally:  # every rank sends its record, also when its script raised before training (rank 0 waits for it)
        try:
            ranks = exchange_for(env).gather(watcher.rank_probe.record(watcher))
        except Exception as exc:  # the store went away: this rank's own diagnosis still stands
            ranks = None
            record.notes.append(f"rank {env.rank}: the ranks' records could not be exchanged ({exc})")
        if ranks is not None:
            record.ranks = ranks
        release_group()


def _watch(watcher: Watcher, target: str, module: bool, name: str, argv: list[str], folder: Path | None,
           roots: tuple[Path, ...]) -> Watcher:
    record = watcher.record
    try:
        with _as_main(argv, folder), watcher:
            if module:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(str(Path(target).resolve()), run_name="__main__")
        record.stopped = "finished"
    except StopScript:
        record.stopped = "budget"
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        code = exc.code
        if code not in (None, 0) and not record.steps:
            raise EntrypointError(f"{name} exited with status {code} before its first optimizer step",
                                  hint="Pass the script's own arguments after --, e.g. "
                                       f"dldoctor run {target} -- --epochs 3") from None
        record.stopped = "finished"
    except BaseException as exc:
        if not record.steps:
            raise EntrypointError(f"{name} raised {exception_line(exc)} before its first optimizer step",
                                  user_traceback=format_user_traceback(exc, roots)) from None
        record.stopped, record.error = "raised", exception_line(exc)
        record.notes.append(f"the script raised {record.error} after {len(record.steps)} optimizer steps")
    return watcher
