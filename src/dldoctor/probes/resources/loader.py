"""Where a training loader spends its time: the dataset's items, the collate function,
and the DataLoader machinery itself.

:func:`time_items` calls the dataset's ``__getitem__`` on a few indices and times each
call in wall-clock and CPU time (CPU far below wall means the item waits: on a lock,
a network, a sleep), counts the bytes it reads through the kernel (Linux
``/proc/self/io``: an item that reads files), and, at the same moment, times whole
batches of the loader: timings taken seconds apart on a busy machine do not compare.
:func:`bare_loader_seconds` times a DataLoader over the same samples already in
memory: the cost of indexing and collating that no pipeline can avoid, against which
the user's loader is compared.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.runtime.tensors import batch_size_of, to_device

#: How the user's data is read: ``read(source, unit)`` iterates ``source()``; the
#: context's guarded reader (a deadline per element) in a run, plain iteration alone.
Reader = Callable[[Callable[[], Iterable[Any]], str], Iterator[Any]]


def _plain(source: Callable[[], Iterable[Any]], unit: str) -> Iterator[Any]:
    return iter(source())


@dataclasses.dataclass(frozen=True)
class ItemTiming:
    """Per-item cost of a map-style dataset.

    Attributes:
        items: items timed.
        wall_s / cpu_s: mean seconds per ``dataset[i]``, wall-clock and process CPU (the
            mean, not the median: a batch pays for every item, slow ones included).
        collate_s: seconds the loader's collate_fn takes for one batch of those items
            (scaled to the loader's batch size), or None when it could not be timed.
        where: the ``__getitem__`` that ran, with its file and line.
        cpu_fraction: the median over items of CPU time / wall-clock time: near 1 for
            an item that computes, near 0 for one that sleeps or waits (the median, so
            that the moments the process was switched out do not count).
        read_bytes / read_calls: bytes and read system calls per item (files, pipes,
            sockets), None where the kernel does not report them.
        batch_s / batch_cpu_s: median seconds per batch of the loader itself, wall-clock
            and CPU, timed alongside (None with worker processes: their time is not the
            main process's wait). On a busy machine the CPU times compare better: a
            process that is switched out loses wall-clock time, not CPU time.
    """

    items: int
    wall_s: float
    cpu_s: float
    collate_s: float | None
    where: str
    cpu_fraction: float = 1.0
    read_bytes: float | None = None
    read_calls: float | None = None
    batch_s: float | None = None
    batch_cpu_s: float | None = None


def _unwrap(dataset: Any) -> Any:
    """The dataset whose own ``__getitem__`` does the work (torch wrappers such as Subset
    delegate to ``.dataset``)."""
    seen = 0
    while (type(dataset).__module__.startswith("torch.utils.data") and hasattr(dataset, "dataset")
           and seen < 5):
        dataset = dataset.dataset
        seen += 1
    return dataset


def getitem_location(dataset: Any) -> str:
    """``MyDataset.__getitem__ (train.py:23)``: the method that produces one item."""
    cls = type(_unwrap(dataset))
    method: Any = getattr(cls, "__getitem__", None)  # no method: inspect raises TypeError
    name = f"{cls.__qualname__}.__getitem__"
    try:
        path = inspect.getsourcefile(method)
        _, line = inspect.getsourcelines(method)
    except (TypeError, OSError):
        return name
    return f"{name} ({os.path.basename(path)}:{line})" if path else name


def is_map_style(dataset: Any) -> bool:
    return (dataset is not None and not isinstance(dataset, torch.utils.data.IterableDataset)
            and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"))


def _io_counters() -> tuple[int, int] | None:
    """(bytes read, read calls) of this process so far, from ``/proc/self/io``."""
    try:
        with open("/proc/self/io") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["rchar"]), int(fields["syscr"])
    except (OSError, KeyError, ValueError):
        return None


def time_items(loader: Any, max_items: int = 16, budget_s: float = 1.0, batches: int = 2,
               read: Reader | None = None) -> ItemTiming | None:
    """Time ``loader.dataset[i]`` for the first indices, the collate function on them,
    and ``batches`` batches of the loader itself.

    None when the loader has no map-style dataset or an item raises (outside a run's
    guarded reader). Run it under ``isolated_rng`` and ``restored_generators(loader)``:
    random augmentations and shuffling draw from generators that must be put back.
    ``read``: how to iterate the user's data (the context's guarded reader: each item
    and batch is timed in its thread, so the hand-off is not counted).
    """
    dataset: Any = getattr(loader, "dataset", None)
    if not is_map_style(dataset):
        return None
    try:
        count = min(int(len(dataset)), max_items)
    except TypeError:
        return None
    read = read or _plain
    walls: list[float] = []
    cpus: list[float] = []
    items = []
    io_before = _io_counters()
    try:
        for wall, cpu, item in read(lambda: _timed_items(dataset, count, budget_s), "item"):
            walls.append(wall)
            cpus.append(cpu)
            items.append(item)
    except (EntrypointError, CheckIncomplete):
        raise
    except Exception:  # the training run read the same data; a failure here says nothing new
        return None
    if not walls:
        return None
    io_after = _io_counters()
    reads = (None, None) if io_before is None or io_after is None else \
        ((io_after[0] - io_before[0]) / len(walls), (io_after[1] - io_before[1]) / len(walls))
    ratio = statistics.median(c / w if w > 0 else 1.0 for c, w in zip(cpus, walls))
    return ItemTiming(len(walls), statistics.fmean(walls), statistics.fmean(cpus),
                      _collate_seconds(loader, items), getitem_location(dataset), min(1.0, ratio), reads[0], reads[1],
                      *_loader_batch_seconds(loader, batches, read))


def _timed_items(dataset: Any, count: int, budget_s: float) -> Iterator[tuple[float, float, Any]]:
    """(wall seconds, CPU seconds, item) of ``dataset[i]`` for the first ``count`` indices,
    stopping after ``budget_s`` once two are timed."""
    began = time.perf_counter()
    for index in range(count):
        w0, c0 = time.perf_counter(), time.process_time()
        item = dataset[index]
        yield time.perf_counter() - w0, time.process_time() - c0, item
        if time.perf_counter() - began > budget_s and index >= 1:
            return


def _timed_batches(loader: Any, batches: int) -> Iterator[tuple[float, float]]:
    iterator = iter(loader)
    for _ in range(batches):
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            next(iterator)
        except StopIteration:  # a tiny loader
            return
        yield time.perf_counter() - w0, time.process_time() - c0


def _loader_batch_seconds(loader: Any, batches: int, read: Reader = _plain) -> tuple[float | None, float | None]:
    if getattr(loader, "num_workers", 0) or batches < 1:
        return None, None
    walls, cpus = [], []
    try:
        for wall, cpu in read(lambda: _timed_batches(loader, batches), "batch"):
            walls.append(wall)
            cpus.append(cpu)
    except (EntrypointError, CheckIncomplete):
        raise
    except Exception:  # the user's error, already reported by the run that read it first
        pass
    if not walls:
        return None, None
    return statistics.median(walls), statistics.median(cpus)


def _collate_seconds(loader: Any, items: list[Any]) -> float | None:
    collate = getattr(loader, "collate_fn", None)
    batch_size = getattr(loader, "batch_size", None)
    if collate is None or not items or not batch_size:
        return None
    try:
        t0 = time.perf_counter()
        collate(items)
        seconds = time.perf_counter() - t0
    except Exception:
        return None
    return seconds * batch_size / len(items)


class _Rows(torch.utils.data.Dataset):
    """The samples of one in-memory batch as a map-style dataset (indices wrap around)."""

    def __init__(self, batch: Any, size: int, length: int):
        self.batch, self.size, self.length = batch, size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        return _row(self.batch, index % self.size, self.size)


def _row(obj: Any, i: int, size: int) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj[i] if obj.dim() > 0 and obj.shape[0] == size else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_row(v, i, size) for v in obj))
    if isinstance(obj, (list, tuple)):
        if len(obj) == size and not any(isinstance(v, (torch.Tensor, list, tuple, dict)) for v in obj):
            return obj[i]  # a list of per-sample values (strings, ids)
        return type(obj)(_row(v, i, size) for v in obj)
    if isinstance(obj, dict):
        return {k: _row(v, i, size) for k, v in obj.items()}
    return obj


def bare_loader_seconds(batch: Any, batches: int = 8) -> float | None:
    """Median seconds per batch of a DataLoader (default collate, no workers) over the
    samples of ``batch`` held in memory: the DataLoader's own per-batch cost."""
    batch = to_device(batch, torch.device("cpu"))
    size = batch_size_of(batch)
    if not size:
        return None
    loader = torch.utils.data.DataLoader(_Rows(batch, size, size * (batches + 1)), batch_size=size)
    times = []
    try:
        iterator = iter(loader)
        next(iterator)  # the first batch pays for the iterator's set-up
        for _ in range(batches):
            t0 = time.perf_counter()
            next(iterator)
            times.append(time.perf_counter() - t0)
    except Exception:  # a batch structure the default collate cannot rebuild
        return None
    return statistics.median(times) if times else None
