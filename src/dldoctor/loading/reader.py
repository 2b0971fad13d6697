"""One guarded reader for the user's data: every batch must arrive by a deadline.

Every pass over a user loader (and every by-index read of its dataset) runs in a
daemon thread of its own, which advances the iterator only when the caller asks for
the next batch (one request, one batch: the user's code never runs alongside
dldoctor's, so the seeded random streams are drawn in the same order as without the
thread). The caller waits for each batch with a deadline; a batch that does not come
is a hang:

- the thread's stack is sampled (``sys._current_frames``): the innermost frame in the
  user's code names the line that waits, and a ``__getitem__`` on the stack gives the
  index it was asked for (its first parameter after ``self``, read from the frame);
- with ``num_workers > 0`` the waiting frame is in a worker process: the stuck batch's
  indices are replayed from the batch sampler under the random state the pass started
  from, and its items are read again in a thread of this process, with one more
  deadline, which finds the item and the line the same way;
- the split is marked hung: the stuck thread cannot be killed, so it is left blocked
  (a daemon, it does not hold up the exit) and the split is never read again. Every
  later read of it fails at once with the same :class:`CheckIncomplete`, so a stuck
  ``__getitem__`` costs one deadline per run, not one per check.

A loader that raises, at its first batch or its 500th, is a broken entrypoint
(:class:`EntrypointError`) naming the batch, the index when a ``__getitem__`` raised,
and the user's trimmed traceback (a worker process's traceback is read from the text
torch re-raises it with).

The deadline for one batch is ``max(run.batch_deadline_s, run.batch_deadline_factor x
the slowest of the first batches read from that split)``: the floor covers the first
batch (worker start-up, lazy opening of files) before anything is measured, the factor
a loader that is slow but not stuck. A source that reports progress item by item
(:func:`progress`, as the by-index reads do) is judged on the time without progress
instead, so a large chunk of slow items is not mistaken for a hang.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import random
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import torch

from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.loading.user_traceback import _is_library, exception_line

#: Read times kept per split and unit: the first ones (the deadline is a multiple of the slowest).
_RECORDED = 64
#: Frames shown of a stack sample or a worker's traceback.
_SHOWN = 8
#: Extra deadlines granted to a reading thread found running a finalizer (see _Pass.wait).
_FINALIZER_GRACE = 2

_ITEM, _END, _ERROR = "item", "end", "error"
_NEXT, _CLOSE = "next", "close"

_local = threading.local()


def progress() -> None:
    """Tell the reader that the source fetched one item: the deadline runs from now.

    Call it from a source that fetches items one by one (it runs in the reader's
    thread); elsewhere it does nothing.
    """
    current = getattr(_local, "current", None)
    if current is not None:
        current.tick()


_janitor_lock = threading.Lock()
_janitor_jobs: queue.SimpleQueue | None = None


def _discard(obj: Any) -> None:
    """Drop the last reference to ``obj`` on a background thread.

    A DataLoader iterator left mid-pass shuts its worker processes down when it is
    released, and waits up to 5 s for each that is busy (torch's status interval)
    before it terminates it: the next pass must not wait behind that.
    """
    global _janitor_jobs  # noqa: PLW0603 - one queue and thread per process, started on first use
    with _janitor_lock:
        if _janitor_jobs is None:
            _janitor_jobs = queue.SimpleQueue()
            threading.Thread(target=_janitor, args=(_janitor_jobs,), name="dldoctor-release", daemon=True).start()
    _janitor_jobs.put(obj)


def _janitor(jobs: queue.SimpleQueue) -> None:
    while True:
        obj = jobs.get()
        del obj


def _in_finalizer(thread: threading.Thread) -> bool:
    """Whether ``thread`` is running a ``__del__`` now (sampled, like :func:`thread_spot`)."""
    frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class _Worker:
    """A daemon thread that runs the steps of passes, one at a time, as they are requested.

    One worker serves every pass of a run (passes may interleave: a training pass is
    suspended while an evaluation pass runs), so the user's code always runs on the same
    thread. A worker stuck in a step is abandoned, never reused.
    """

    def __init__(self, name: str):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def retire(self) -> None:
        """Let the thread end once it is done with what it runs (if it ever is)."""
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            pass_, op = job
            pass_.run(op)
            job = pass_ = None


class _Pass:
    """One iteration of a source, advanced on the worker's thread, one request at a time."""

    def __init__(self, worker: _Worker, source: Callable[[], Iterable[Any]], times: list[float]):
        self.worker = worker
        self._source = source
        self._times = times
        self._iterator: Iterator[Any] | None = None
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.last_tick = time.monotonic()
        self.busy = False
        self.done = False

    @property
    def thread(self) -> threading.Thread:
        return self.worker.thread

    def tick(self) -> None:
        now = time.monotonic()
        if len(self._times) < _RECORDED:
            self._times.append(now - self.last_tick)
        self.last_tick = now

    def request(self) -> None:
        self.busy = True
        self.last_tick = time.monotonic()
        self.worker.jobs.put((self, _NEXT))

    def wait(self, deadline_s: float) -> tuple[str, Any] | None:
        """The next result, or None when no progress came for ``deadline_s`` seconds.

        Time the thread spends in a finalizer (``__del__``) is not the source's: the
        garbage collector runs finalizers of unrelated objects on whichever thread
        allocates, and one (a DataLoader iterator shutting down its worker processes)
        can take seconds per worker. A thread found in one gets the deadline again, up
        to ``_FINALIZER_GRACE`` times.
        """
        grace = _FINALIZER_GRACE
        while True:
            left = self.last_tick + deadline_s - time.monotonic()
            if left <= 0 and grace > 0 and _in_finalizer(self.thread):
                grace -= 1
                self.last_tick = time.monotonic()
                continue
            if left <= 0:
                return None
            try:
                result = self.results.get(timeout=left)
            except queue.Empty:
                continue  # progress may have moved the deadline on
            self.busy = False
            return result

    def close(self) -> None:
        """Release the iterator, on the worker's thread (a DataLoader's shuts its workers down)."""
        if not self.done:
            self.done = True
            self.worker.jobs.put((self, _CLOSE))

    def run(self, op: str) -> None:
        """One step, on the worker's thread."""
        if op == _CLOSE:
            if self._iterator is not None:
                _discard(self._iterator)
                self._iterator = None
            return
        _local.current = self
        try:
            if self._iterator is None:
                self._iterator = iter(self._source())
            item = next(self._iterator)
        except StopIteration:
            self._finish((_END, None))
            return
        except BaseException as exc:  # handed to the caller, who reports it
            self._finish((_ERROR, exc))
            return
        finally:
            _local.current = None
        self.tick()
        self.results.put((_ITEM, item))

    def _finish(self, result: tuple[str, Any]) -> None:
        self._iterator = None
        self.done = True
        self.results.put(result)


# -- where the user's code is --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Spot:
    """Where a thread waits, or where an exception was raised, in the user's terms.

    Attributes:
        frames: the user's frames, outermost first (library frames dropped).
        index: the argument of the innermost ``__getitem__`` on the stack (its first
            parameter after ``self``), as text, or None.
        inner: the innermost frame overall, when no user frame is on the stack.
    """

    frames: tuple[traceback.FrameSummary, ...]
    index: str | None = None
    inner: traceback.FrameSummary | None = None

    @property
    def location(self) -> str:
        """``train.py:23``, or "" when no user frame is known."""
        if not self.frames:
            return ""
        f = self.frames[-1]
        return f"{Path(f.filename).name}:{f.lineno}"

    def where(self) -> str:
        """``train.py:23 in __getitem__ (time.sleep(60))``: the innermost user frame and its line
        (the innermost frame overall when no user frame is on the stack)."""
        f = self.frames[-1] if self.frames else self.inner
        if f is None:
            return "an unknown place"
        line = (f.line or "").strip()
        return f"{Path(f.filename).name}:{f.lineno} in {f.name}" + (f" ({line})" if line else "")

    @property
    def getitem(self) -> str:
        return f"__getitem__(index={self.index})" if self.index is not None else ""

    def stack_text(self, heading: str) -> str:
        if not self.frames:
            return ""
        shown = list(self.frames)[-_SHOWN:]
        return (heading + "\n" + "".join(traceback.format_list(shown))).rstrip()


def _root_strings(roots: Iterable[Path]) -> tuple[str, ...]:
    return tuple(str(Path(r).resolve()) for r in roots)


def _user_file(filename: str, roots: tuple[str, ...]) -> bool:
    if _is_library(filename):
        return False
    return not roots or os.path.realpath(filename).startswith(roots)


def _index_text(frame: FrameType) -> str | None:
    """The first positional parameter after ``self`` of a ``__getitem__`` frame, as text."""
    code = frame.f_code
    if code.co_argcount < 2:
        return None
    value = frame.f_locals.get(code.co_varnames[1])
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _spot(frames: list[tuple[FrameType, int]], roots: tuple[str, ...]) -> Spot:
    """Read a stack, innermost frame first, as (frame, line number) pairs."""
    mine = [(f, n) for f, n in frames if _user_file(f.f_code.co_filename, roots)]
    if not mine and roots:
        mine = [(f, n) for f, n in frames if not _is_library(f.f_code.co_filename)]
    getitems = [f for f, _ in frames if f.f_code.co_name == "__getitem__"]
    own = [f for f in getitems if any(f is m for m, _ in mine)]
    pick = own[0] if own else (getitems[0] if getitems else None)
    index = _index_text(pick) if pick is not None else None

    def summary(frame: FrameType, lineno: int) -> traceback.FrameSummary:
        return traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_name)

    inner = summary(*frames[0]) if frames else None
    return Spot(tuple(summary(f, n) for f, n in reversed(mine)), index, inner)


def thread_spot(thread: threading.Thread, roots: Iterable[Path]) -> Spot:
    """Sample the stack of ``thread`` now: where in the user's code it waits."""
    # sys._current_frames: the documented way to sample a thread.
    frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
    frames: list[tuple[FrameType, int]] = []
    while frame is not None:
        frames.append((frame, frame.f_lineno))
        frame = frame.f_back
    return _spot(frames, _root_strings(roots))


def exception_spot(exc: BaseException, roots: Iterable[Path]) -> Spot:
    """Where ``exc`` was raised in the user's code."""
    frames: list[tuple[FrameType, int]] = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    frames.reverse()
    return _spot(frames, _root_strings(roots))


_WORKER_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')


def worker_traceback(exc: BaseException, roots: Iterable[Path]) -> tuple[str, Spot] | None:
    """A DataLoader worker's exception, re-raised in this process with the worker's
    traceback as text: (its last line, the user's frames read from the text)."""
    _, sep, tail = str(exc).partition("Original Traceback (most recent call last):")
    if not sep:
        return None
    lines = tail.strip("\n").splitlines()
    last = next((line for line in reversed(lines) if line.strip()), "").strip()
    root_strs = _root_strings(roots)
    frames = []
    for i, line in enumerate(lines):
        m = _WORKER_FRAME.match(line)
        if m and _user_file(m["file"], root_strs):
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _WORKER_FRAME.match(lines[i + 1]) else ""
            frames.append(traceback.FrameSummary(m["file"], int(m["line"]), m["name"].strip(), line=code))
    return (last or type(exc).__name__), Spot(tuple(frames))


# -- the random state a pass starts from (for replays) --------------------------------------
def loader_generators(loader: Any) -> list[torch.Generator]:
    """The loader's own random generators (its own, its sampler's, its batch sampler's sampler's)."""
    found: list[torch.Generator] = []
    for owner in (loader, getattr(loader, "sampler", None),
                  getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not other for other in found):
            found.append(g)
    return found


@dataclasses.dataclass(frozen=True)
class _PassStart:
    torch_state: torch.Tensor
    numpy_state: Any
    python_state: Any
    generators: tuple[tuple[torch.Generator, torch.Tensor], ...]
    fresh_iterator: bool


def _capture(loader: Any) -> _PassStart:
    # A DataLoader with persistent workers re-uses its iterator after the first pass,
    # which then draws no base seed.
    fresh = not (getattr(loader, "persistent_workers", False) and getattr(loader, "_iterator", None) is not None)
    return _PassStart(torch.random.get_rng_state(), np.random.get_state(), random.getstate(),
                      tuple((g, g.get_state()) for g in loader_generators(loader)), fresh)


@contextlib.contextmanager
def _at_pass_start(start: _PassStart) -> Iterator[None]:
    """Set the random state the pass started from; put the present one back afterwards."""
    now = (torch.random.get_rng_state(), np.random.get_state(), random.getstate(),
           [(g, g.get_state()) for g, _ in start.generators])
    torch.random.set_rng_state(start.torch_state)
    np.random.set_state(start.numpy_state)
    random.setstate(start.python_state)
    for g, state in start.generators:
        g.set_state(state)
    try:
        yield
    finally:
        torch.random.set_rng_state(now[0])
        np.random.set_state(now[1])
        random.setstate(now[2])
        for g, state in now[3]:
            g.set_state(state)


def _workers(loader: Any) -> int:
    return int(getattr(loader, "num_workers", 0) or 0) if isinstance(loader, torch.utils.data.DataLoader) else 0


def _map_style(loader: Any) -> bool:
    dataset = getattr(loader, "dataset", None)
    return not isinstance(dataset, torch.utils.data.IterableDataset) and hasattr(dataset, "__getitem__")


def _replay_source(loader: Any, number: int, start: _PassStart | None, picked: list[Any]) -> Callable[[], Iterator]:
    """Read batch ``number`` (1-based) of a pass again, item by item, in this process."""

    def source() -> Iterator[Any]:
        dataset = loader.dataset
        if not _map_style(loader):
            # An iterable dataset: read it in this process as far as the workers had got together.
            per_batch = int(getattr(loader, "batch_size", None) or 1)
            limit = number * per_batch * max(1, _workers(loader))
            for k, _ in enumerate(dataset):
                progress()
                if k + 1 >= limit:
                    break
            yield None
            return
        sampler = loader.batch_sampler if loader.batch_sampler is not None else loader.sampler
        with _at_pass_start(start) if start is not None else contextlib.nullcontext():
            if start is not None and start.fresh_iterator:
                # What DataLoader's iterator draws first: the workers' base seed.
                torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
            indices = iter(sampler)
            for _ in range(number - 1):
                next(indices)
            wanted = next(indices)
        batched = loader.batch_sampler is not None
        wanted = list(wanted) if batched else [wanted]
        picked.extend(int(i) if isinstance(i, (int, np.integer)) else i for i in wanted)
        items = []
        for index in wanted:
            items.append(dataset[index])
            progress()
        yield loader.collate_fn(items if batched else items[0])

    return source


# -- the reader ------------------------------------------------------------------------------
@dataclasses.dataclass
class _SplitState:
    hung: CheckIncomplete | None = None
    hint: str = ""
    times: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    strays: list[_Pass] = dataclasses.field(default_factory=list)


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.3g} s"


#: Hints for a loader that raises while it is read, and for one that hangs.
LOADER_HINT = "Check the Dataset's __getitem__ and the collate function."
HANG_HINT = ("Find why it waits at that line: a lock, a queue, a network or file read without a timeout, an "
             "endless loop. dldoctor waits run.batch_deadline_s seconds for a batch (or run.batch_deadline_factor "
             "times the slowest batch it measured): raise them in --config for a loader that is slow, not stuck.")
WORKER_HANG_HINT = ("The worker processes wait while the same items load in the main process: look at "
                    "worker_init_fn, and at locks, open files or connections created before the DataLoader forks its "
                    "workers (open them lazily, in the worker); num_workers=0 shows whether the workers are the cause.")


class GuardedReader:
    """Reads the user's splits with a deadline per batch; remembers the splits that hung.

    Args:
        roots: folders of the user's code (for the frames worth showing).
        floor_s: the shortest deadline (``run.batch_deadline_s``).
        factor: the deadline as a multiple of the slowest batch measured (``run.batch_deadline_factor``).
    """

    def __init__(self, roots: Iterable[Path], floor_s: float, factor: float):
        self.roots = tuple(roots)
        self.floor_s = float(floor_s)
        self.factor = float(factor)
        self._splits: dict[str, _SplitState] = {}
        self._worker: _Worker | None = None

    def __del__(self) -> None:
        if self._worker is not None:
            self._worker.retire()

    def _current_worker(self) -> _Worker:
        if self._worker is None:
            self._worker = _Worker("dldoctor-reader")
        return self._worker

    def _abandon(self, worker: _Worker) -> None:
        """A worker busy with a step nobody waits for any more (stuck, or its caller was
        interrupted): later passes get a fresh one; it ends if the step ever returns."""
        if worker is self._worker:
            self._worker = None
        worker.retire()

    def _state(self, split: str) -> _SplitState:
        return self._splits.setdefault(split, _SplitState())

    def deadline(self, split: str, unit: str = "batch") -> float:
        """Seconds a read of ``split`` may go without progress before it counts as hung."""
        times = self._state(split).times.get(unit)
        return max(self.floor_s, self.factor * max(times)) if times else self.floor_s

    def hung(self, split: str) -> CheckIncomplete | None:
        """The error of a split that hung (its reads fail at once with it), or None."""
        state = self._splits.get(split)
        return state.hung if state is not None else None

    def hang_hint(self, split: str) -> str:
        """What to do about the split's hang ("" when it did not hang)."""
        state = self._splits.get(split)
        return state.hint if state is not None else ""

    def check(self, split: str) -> None:
        """Raise the split's hang at once if it hung; wait for a read left in flight by an
        interrupted caller (a check that ran out of time) before a new one starts."""
        state = self._state(split)
        if state.hung is not None:
            raise state.hung
        for stray in list(state.strays):
            if stray.busy and stray.wait(self.deadline(split)) is None:
                raise self._hang(split, stray, 0, f"reading the {split}_loader", "batch", None, None)
            state.strays.remove(stray)

    def read(self, split: str, source: Callable[[], Iterable[Any]], *, what: str, unit: str = "batch",
             loader: Any = None) -> Iterator[Any]:
        """Iterate ``source()`` in a daemon thread, each element within its deadline.

        Args:
            split: "train", "val" or "test" (what a hang marks, what messages name).
            source: returns the iterable to read (called in the thread: ``iter(loader)``
                starts workers and runs user code).
            what: "iterating the train_loader": the start of messages.
            unit: "batch" (one element is one batch of the loader), "item" (the
                source calls :func:`progress` per item; the deadline is per item) or
                "call" (one element: a call of user code, e.g. a pass of the sampler).
            loader: the loader being read, to replay a stuck batch of worker processes.

        Raises:
            EntrypointError: the user's code raised (any batch).
            CheckIncomplete: no batch (no progress) within the deadline (``user_code=True``).
        """
        self.check(split)
        state = self._state(split)
        times = state.times.setdefault(unit, [])
        start = _capture(loader) if unit == "batch" and _workers(loader) and _map_style(loader) else None
        current = _Pass(self._current_worker(), source, times)
        number = 0
        try:
            while True:
                number += 1
                current.request()
                result = current.wait(self.deadline(split, unit))
                if result is None:
                    raise self._hang(split, current, number, what, unit, loader, start)
                kind, value = result
                if kind == _END:
                    return
                if kind == _ERROR:
                    if _raised_by_dldoctor(value):
                        raise value  # a bug of dldoctor's own source: the pipeline reports it as such
                    raise self._error(split, value, number, what, unit, loader, start) from None
                yield value
                value = result = None
        finally:
            current.close()
            if current.busy:
                self._abandon(current.worker)
                if state.hung is None:
                    state.strays.append(current)  # interrupted while waiting: the next read waits for it

    def call(self, split: str, fn: Callable[[], Any], *, what: str) -> Any:
        """Run ``fn()`` (user code over the split, e.g. one pass of its sampler) under the deadline."""
        for value in self.read(split, lambda: (fn(),), what=what, unit="call"):
            return value
        return None

    # -- failures ----------------------------------------------------------------------------
    def _unit_text(self, unit: str, number: int) -> str:
        if number <= 0:
            return ""
        return f" at batch {number}" if unit == "batch" else ""

    def _hang(self, split: str, reading: _Pass, number: int, what: str, unit: str, loader: Any,
              start: _PassStart | None) -> CheckIncomplete:
        waited = time.monotonic() - reading.last_tick
        spot = thread_spot(reading.thread, self.roots)
        workers = _workers(loader)
        if unit == "batch":
            subject = f"the {split}_loader" + (f" (num_workers={workers})" if workers else "")
            head = f"{subject} produced no batch for {_seconds(waited)}{self._unit_text(unit, number)}"
        else:
            head = f"{what} made no progress for {_seconds(waited)}"
        heading = (f"Stack of the thread reading the {split}_loader, {_seconds(waited)} into "
                   f"{'batch ' + str(number) if unit == 'batch' and number else 'the read'} "
                   f"(your code, most recent call last):")
        hint = HANG_HINT
        replayed = None
        if not spot.frames and unit == "batch" and workers and number > 0:
            try:
                replayed = self._replay_hang(split, loader, number, start, head)
            except Exception:  # localising is a bonus; the hang stands without it
                replayed = None
        if replayed is not None:
            spot, reason, heading, hint = replayed
        elif spot.frames:
            reason = f"{head}: {spot.getitem or 'it'} waits at {spot.where()}"
        else:
            reason = f"{head}: it waits in {spot.where()}"
        exc = CheckIncomplete(reason, location=spot.location or f"{split}_loader",
                              user_traceback=spot.stack_text(heading), user_code=True)
        state = self._state(split)
        state.hung, state.hint = exc, hint
        return exc

    def _replay_hang(self, split: str, loader: Any, number: int, start: _PassStart | None,
                     head: str) -> tuple[Spot, str, str, str]:
        """The stuck batch is in a worker process: read its items again here, one more deadline at most."""
        picked: list[Any] = []
        result, replay = self._replay(split, loader, number, start, picked)
        items = f"indices {_span(picked)}" if picked else "its items"
        again = f"{head}; read again in this process ({items}),"
        heading = (f"Stack of a thread of dldoctor's process reading batch {number} of the {split}_loader again "
                   f"(your code, most recent call last):")
        if result is None:
            spot = thread_spot(replay.thread, self.roots)
            if spot.frames:
                return spot, f"{again} {spot.getitem or 'it'} waits at {spot.where()}", heading, HANG_HINT
            return spot, f"{again} it waits in {spot.where()}", heading, HANG_HINT
        kind, value = result
        if kind == _ERROR:
            spot = exception_spot(value, self.roots)
            return (spot, f"{again} {spot.getitem or 'it'} raised {exception_line(value)} at {spot.where()}",
                    "Traceback (your code, most recent call last):", LOADER_HINT)
        return (Spot(()), f"{again} they load without waiting, so the worker processes wait elsewhere "
                          f"(worker_init_fn, or a lock or connection inherited when the workers were forked)",
                heading, WORKER_HANG_HINT)

    def _replay(self, split: str, loader: Any, number: int, start: _PassStart | None,
                picked: list[Any]) -> tuple[tuple[str, Any] | None, _Pass]:
        """Read batch ``number`` again in a thread of this process (its own: the reader's may be stuck)."""
        worker = _Worker(f"dldoctor-replay-{split}")
        replay = _Pass(worker, _replay_source(loader, number, start, picked),
                       list(self._state(split).times.get("item", [])))
        replay.request()
        result = replay.wait(self.deadline(split, "item"))
        replay.close()
        worker.retire()
        return result, replay

    def _error(self, split: str, exc: BaseException, number: int, what: str, unit: str, loader: Any,
               start: _PassStart | None) -> EntrypointError:
        spot = exception_spot(exc, self.roots)
        line = exception_line(exc)
        heading = "Traceback (your code, most recent call last):"
        from_worker = worker_traceback(exc, self.roots)
        if from_worker is not None:
            line, spot = f"{type(exc).__name__}: {from_worker[0].split(': ', 1)[-1]}", from_worker[1]
            heading = "Traceback (your code, in a DataLoader worker process, most recent call last):"
            if unit == "batch" and loader is not None and _map_style(loader):
                try:
                    again = self._replay_error(split, loader, number, start)
                except Exception:  # the worker's own traceback stands without it
                    again = None
                if again is not None:
                    spot = dataclasses.replace(again, frames=again.frames or spot.frames)
        at = self._unit_text(unit, number)
        message = f"{what} raised {line.split(':', 1)[0]}{at}"
        detail = line.split(": ", 1)[1] if ": " in line else ""
        if detail:
            message += f": {detail}"
        if spot.getitem:
            message += f" (in {spot.getitem})"
        trace = spot.stack_text(heading)
        trace = f"{trace}\n{line}" if trace else line
        return EntrypointError(message, hint=LOADER_HINT, user_traceback=trace)

    def _replay_error(self, split: str, loader: Any, number: int, start: _PassStart | None) -> Spot | None:
        """A worker raised: read the batch again here, for the index and the frames with their locals."""
        picked: list[Any] = []
        result, _ = self._replay(split, loader, number, start, picked)
        if result is None or result[0] != _ERROR:
            return None
        return exception_spot(result[1], self.roots)


_PACKAGE = str(Path(__file__).resolve().parents[1])


def _raised_by_dldoctor(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc`` is dldoctor's own code (not the user's, not torch's)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.realpath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE)


def _span(indices: list[Any]) -> str:
    ints = [i for i in indices if isinstance(i, int)]
    if len(ints) == len(indices) and ints and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}..{ints[-1]}"
    shown = ", ".join(map(str, indices[:6]))
    return shown + (f", ... ({len(indices)} in all)" if len(indices) > 6 else "")

