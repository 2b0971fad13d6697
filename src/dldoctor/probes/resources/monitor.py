"""Per-step resource records of the runs that train (the overfit runs, the short training).

A :class:`StepMonitor` is told, after each step, how long the loop waited for the
batch (and how much of that was the copy to the device) and how long the step
itself took; it reads the memory in use and, at a few steps (5, 17, 65, 257, ...
and the last), takes a snapshot of what the model, loss, forward,
optimiser and dataset hold (``probes.resources.holders``). It times itself, so the
cost of measuring is known (``overhead_s``; ``benchmarks/measurement_overhead.py``).

Reading malloc's statistics walks its free lists, which right after a step can take
tens of microseconds. The first ``DENSE_READS`` steps are all read (a short run needs
every point for the trend test, and costs little in total); after them, every
``SPARSE_INTERVAL``-th step. Which steps are read depends on the step count alone,
never on how long a read took: the same run gives the same series on a busy machine.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from dldoctor.probes.resources.holders import Snapshot, snapshot
from dldoctor.probes.resources.memory import MemoryReader

#: The first snapshot comes after this many steps: the optimiser's state exists by then.
FIRST_SNAPSHOT = 5
#: Bytes a Python list of per-step records adds to malloc's in-use count per step: an
#: 8-byte pointer, the list's over-allocation (1/8) and realloc rounding; measured at
#: 9-14 B on CPython 3.11 with glibc (the float objects themselves live in pymalloc's
#: arenas, which malloc does not count).
RECORD_BYTES = 16
#: Steps whose memory is always read.
DENSE_READS = 32
#: After them, one step in this many is read. A read costs 5-40 us after a step of the
#: digits CNN (3.5 ms; more as the heap fragments): every fourth step keeps it near 0.3%.
SPARSE_INTERVAL = 4


@dataclasses.dataclass(frozen=True)
class ResourceRecord:
    """What a run used, step by step (plain numbers).

    Attributes:
        wait_s: per step, seconds waiting for the next batch (loading and copying it).
        copy_s: per step, the part of ``wait_s`` spent moving the batch to the device.
        compute_s: per step, seconds in forward, loss, backward and the optimiser step.
        samples: per step, samples in the batch.
        memory: bytes in use after the steps ``memory_steps`` (``memory_source`` says which).
        memory_steps: the 0-based step of each memory reading (the first ``DENSE_READS``
            steps, then every ``SPARSE_INTERVAL``-th).
        host_memory: on CUDA, the host's bytes in use at the same steps (else empty).
        snapshots: what the run's objects held at a few steps (for where memory grows).
        overhead_s: seconds the monitor itself took (reading memory, snapshots).
        own_bytes_per_step: how much the run's own per-step records (this monitor's
            and the probe's lists) add to the memory reading each step, at most.
        memory_coarse: ``memory`` is the resident set, not bytes in use.
    """

    wait_s: tuple[float, ...] = ()
    copy_s: tuple[float, ...] = ()
    compute_s: tuple[float, ...] = ()
    samples: tuple[int, ...] = ()
    memory: tuple[int, ...] = ()
    memory_steps: tuple[int, ...] = ()
    memory_source: str = ""
    host_memory: tuple[int, ...] = ()
    host_source: str = ""
    snapshots: tuple[Snapshot, ...] = ()
    overhead_s: float = 0.0
    own_bytes_per_step: float = 0.0
    memory_coarse: bool = False

    @property
    def steps(self) -> int:
        return len(self.compute_s)


class StepMonitor:
    """Collects a :class:`ResourceRecord` during one run.

    Args:
        device: the run's device.
        roots: returns the objects to snapshot (see ``resources.holders.roots_of``);
            None for no snapshots.
        own_records: how many lists of per-step records the calling probe keeps
            besides this monitor's (they grow the memory reading a little each step).
        read_memory: False for timings alone (a distributed run's other ranks: only rank 0's
            memory is judged).
    """

    def __init__(self, device: torch.device, roots: Callable[[], Mapping[str, Any]] | None = None,
                 own_records: int = 0, read_memory: bool = True):
        self._reader = MemoryReader(device)
        self._read, self._read_host = self._reader.read, self._reader.read_host
        self._roots = roots
        self._wait: list[float] = []
        self._copy: list[float] = []
        self._compute: list[float] = []
        self._samples: list[int] = []
        self._memory: list[int] = []
        self._memory_steps: list[int] = []
        self._host: list[int] = []
        self._next_read = 0 if read_memory else sys.maxsize
        self._snapshots: list[Snapshot] = []
        self._next_snapshot = FIRST_SNAPSHOT
        self._overhead = 0.0
        self._own = RECORD_BYTES * (own_records + (6 if device.type == "cuda" else 5))

    def step(self, wait_s: float, compute_s: float, samples: int, copy_s: float = 0.0) -> None:
        """Record one finished step (call it right after the step, before anything else)."""
        start = time.perf_counter()
        self._wait.append(wait_s)
        self._copy.append(copy_s)
        compute = self._compute
        compute.append(compute_s)
        self._samples.append(samples)
        index = len(compute) - 1
        if index >= self._next_read:  # the memory reading, here and not in a method: this runs after every step
            self._memory.append(self._read())
            if self._read_host is not None:
                self._host.append(self._read_host())
            self._memory_steps.append(index)
            self._next_read = index + (1 if index + 1 < DENSE_READS else SPARSE_INTERVAL)
        if self._roots is not None and index + 1 >= self._next_snapshot:
            self._take_snapshot()
            self._next_snapshot = 4 * self._next_snapshot - 3
        self._overhead += time.perf_counter() - start

    def _take_snapshot(self) -> None:
        step = len(self._compute) - 1
        if (self._snapshots and self._snapshots[-1].step == step) or self._roots is None:
            return
        try:
            self._snapshots.append(snapshot(step, self._roots()))
        except Exception:  # a user object that cannot be walked costs the "where", not the run
            self._roots = None

    def finish(self) -> ResourceRecord:
        """The record, with a last snapshot at the final step."""
        start = time.perf_counter()
        if self._roots is not None and self._compute:
            self._take_snapshot()
        self._overhead += time.perf_counter() - start
        return ResourceRecord(
            wait_s=tuple(self._wait), copy_s=tuple(self._copy), compute_s=tuple(self._compute),
            samples=tuple(self._samples), memory=tuple(self._memory), memory_steps=tuple(self._memory_steps),
            memory_source=self._reader.source,
            host_memory=tuple(self._host), host_source=self._reader.host_source,
            snapshots=tuple(self._snapshots), overhead_s=self._overhead, own_bytes_per_step=self._own,
            memory_coarse=self._reader.coarse,
        )
