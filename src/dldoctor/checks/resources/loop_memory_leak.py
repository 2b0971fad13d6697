"""Script mode: memory that grows step after step in the user's own loop."""

from __future__ import annotations

import dataclasses

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop, format_bytes
from dldoctor.api.read import leak_judgement

#: Memory held until the epoch ends counts as given back when the first reading after the
#: boundary is at least this share of the epoch's growth below the last one before it.
RELEASED_SHARE = 0.5


def first_epoch(resources, loop: WatchedLoop):
    """``resources`` cut at the first epoch boundary, and the cut's step index; None when
    there is no boundary or no memory reading after it."""
    if not loop.epoch_starts or len(loop.monitored_steps) != len(resources.compute_s):
        return None
    boundary = loop.epoch_starts[0]
    cut = sum(1 for s in loop.monitored_steps if s < boundary)
    keep = [i for i, step in enumerate(resources.memory_steps) if step < cut]
    if len(keep) == len(resources.memory_steps):
        return None
    return dataclasses.replace(
        resources, wait_s=resources.wait_s[:cut], copy_s=resources.copy_s[:cut],
        compute_s=resources.compute_s[:cut], samples=resources.samples[:cut],
        memory=tuple(resources.memory[i] for i in keep), memory_steps=tuple(resources.memory_steps[i] for i in keep),
        host_memory=tuple(resources.host_memory[i] for i in keep) if resources.host_memory else (),
        snapshots=tuple(s for s in resources.snapshots if s.step < cut)), boundary


def held_for_an_epoch(ctx, loop: WatchedLoop, where: str) -> Judgement | None:
    """Memory that climbs through the first epoch and is given back when it ends.

    Outputs or losses kept with their graphs for an epoch-end metric: the whole-run trend
    breaks at the boundary, but the peak grows with the epoch's length, and on a real data
    set's epoch (thousands of batches) it runs out of memory.
    """
    res = loop.resources
    cut = first_epoch(res, loop)
    if cut is None:
        return None
    first, boundary = cut
    leak = leak_judgement(ctx, first, "script's first epoch", loop.train_batches_per_epoch, where)
    if leak is None:
        return None
    n_reads = len(first.memory)
    grown = first.memory[-1] - first.memory[0]
    fell = first.memory[-1] - min(res.memory[n_reads:])
    if grown <= 0 or fell < RELEASED_SHARE * grown:
        return None  # not given back at the boundary: the whole-run test's verdict stands
    slope = float(leak.metrics["bytes_per_step"])
    per_epoch = loop.train_batches_per_epoch or boundary
    held = slope * per_epoch
    available = leak.metrics.get("available_bytes")
    severity = Severity.ERROR if available and held >= available else Severity.WARNING
    evidence = [e for e in leak.evidence if not e.startswith("at this rate")]
    evidence.append(f"it is given back when the epoch ends: {format_bytes(fell)} freed after step {boundary}, "
                    f"so what grows is held for a whole epoch and the peak grows with its length "
                    f"({per_epoch:,} steps x {format_bytes(slope)} = {format_bytes(held)} here"
                    + (f", of {format_bytes(available)} available)" if available else ")"))
    return dataclasses.replace(
        leak, severity=severity, evidence=tuple(evidence),
        title=f"memory grows by {format_bytes(slope)} per training step until the epoch ends "
              f"({format_bytes(held)} held at the end of each {per_epoch:,}-step epoch)",
        metrics={**leak.metrics, "released_at_epoch_end": fell, "held_per_epoch": held,
                 "projected_steps_to_exhaustion": None})


class LoopMemoryLeakCheck(Check):
    """Memory in use climbs steadily over the watched steps of the script's own loop.

    The same test as ``memory-leak`` (a Theil-Sen slope after warm-up, over the whole
    run and its second half), on the memory read after each optimizer step of the user's
    loop. What only the user's loop does shows here and in no staged run: a running total
    ``total_loss += loss`` that keeps every step's autograd graph, outputs appended to a
    list for later, a hidden state carried across batches without ``detach()``. Memory
    that climbs through the first epoch and is given back when it ends (outputs kept for
    an epoch metric) is judged on the first epoch's steps, before the whole run: a
    warning, or an error when an epoch's worth of it exceeds the memory available.
    """

    name = "loop-memory-leak"
    stage = Stage.RUN
    order = 4
    requires = ("script",)
    emits = ("memory-leak",)

    def run(self, ctx):
        loop = ctx.watched
        if loop.resources is None:
            return []
        where = loop.backward_line or loop.step_line
        # Memory given back at the epoch's end first: a robust slope over the whole run may
        # read straight through one drop, and would then project an exhaustion that never comes.
        leak = held_for_an_epoch(ctx, loop, where) or leak_judgement(
            ctx, loop.resources, "script's own loop", loop.train_batches_per_epoch, where)
        return [] if leak is None else [self.judged(leak)]
