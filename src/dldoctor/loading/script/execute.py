"""Run a training script as ``python train.py`` (or ``python -m pkg.train``) would, watched.

``sys.argv`` is the script and its arguments, the script's folder is first on
``sys.path``, the working directory is unchanged; all three (and ``__main__``) are put
back afterwards. What the script prints goes to stderr, so that ``--format json`` on
stdout stays parseable. The script stops at the step budget (:class:`StopScript`, raised
from inside its own ``optimizer.step()``), when it ends, or when it raises.
"""

from __future__ import annotations

import contextlib
import functools
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
                 budget: Budget | None = None, step_monitor: Callable[..., Any] | None = None,
                 follower: bool = False) -> Watcher:
    """Run the script under a :class:`Watcher` and return it with its record filled in (``follower``: see
    ``Watcher.follower``; its step monitor, given ``read_memory=False``, times the steps alone).

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
    if follower and step_monitor is not None:
        step_monitor = functools.partial(step_monitor, read_memory=False)  # only rank 0's memory is judged
    watcher = Watcher(record, budget, roots, step_monitor)
    watcher.follower = follower
    argv = [str(Path(target).resolve()) if not module else target, *args]
    from dldoctor.distributed import rank_env

    env = rank_env()
    if env is None:
        return _watch(watcher, target, module, name, argv, folder, roots)
    from dldoctor.distributed.exchange import exchange_for, release_group
    from dldoctor.distributed.rank_record import RankProbe

    watcher.rank_probe = RankProbe(env)
    quiet_flight_recorder()
    exchange = exchange_for(env)
    dog = _watchdog(env, exchange, watcher, roots)
    try:
        return _watch(watcher, target, module, name, argv, folder, roots)
    finally:  # every rank sends its record, also when its script raised before training (rank 0 waits for it)
        if dog is not None:
            dog.mark_ended()
        if record.hang is not None:
            record.stopped = "hang"
        try:
            ranks = exchange.gather(watcher.rank_probe.record(watcher))
        except Exception as exc:  # the store went away: this rank's own diagnosis still stands
            ranks = None
            record.notes.append(f"rank {env.rank}: the ranks' records could not be exchanged ({exc})")
        if dog is not None and env.leader:
            dog.stop()  # the others' watchdogs stay: rank 0 may still hang in its checks' absence of peers
        if ranks is not None:
            record.ranks = ranks
        release_group()


def _watchdog(env: Any, exchange: Any, watcher: Watcher, roots: tuple[Path, ...]) -> Any:
    """Start this rank's hang watchdog (:mod:`dldoctor.distributed.watchdog`); None without a store."""
    import os

    from dldoctor.distributed.watchdog import Watchdog

    if exchange.store is None:
        return None
    record = watcher.record

    def on_hang(verdict: dict[str, Any]) -> None:
        record.hang = verdict
        if not env.leader:  # the others send their record now: their main thread is stuck
            record.stopped = "hang"
            exchange.gather(watcher.rank_probe.record(watcher))

    def leave() -> None:
        exchange.leave()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        os._exit(0)

    return Watchdog(env, exchange.store, exchange.prefix, watcher.budget.hang_s, roots, on_hang, leave).start()


#: torch's c10d flight recorder keeps the last N collectives of each process group (2,000 by default) in a
#: ring buffer that fills during the first N collectives: malloc in-use memory grows by 1-4 kB per
#: optimizer step until it is full (measured here: 2 gloo ranks, 4 all_reduce calls a step, +840 kB over
#: 250 steps, flat after), which reads as a leak of the user's loop. A rank dldoctor watches runs with it
#: off unless the user set it: it records nothing the diagnosis reads.
FLIGHT_RECORDER_ENV = ("TORCH_FR_BUFFER_SIZE",)


def quiet_flight_recorder() -> None:
    """Turn the flight recorder off in this rank (before the script creates its process group)."""
    import os

    if not any(name in os.environ for name in FLIGHT_RECORDER_ENV):
        for name in FLIGHT_RECORDER_ENV:
            os.environ[name] = "0"


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
        if record.hang is not None:  # the collective it waited in failed once the other ranks left
            record.stopped, record.error = "hang", exception_line(exc)
            record.notes.append(f"the ranks hung after {len(record.steps)} optimizer steps; the script was ended")
            return watcher
        if not record.steps:
            raise EntrypointError(f"{name} raised {exception_line(exc)} before its first optimizer step",
                                  user_traceback=format_user_traceback(exc, roots)) from None
        record.stopped, record.error = "raised", exception_line(exc)
        record.notes.append(f"the script raised {record.error} after {len(record.steps)} optimizer steps")
    return watcher
