"""Memory that grows step after step during the short training run (the evaluate stage)."""

from __future__ import annotations

import dataclasses

from dldoctor.api import Check, Stage
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import leak_judgement


def _levelled(values: tuple[int, ...], steps: tuple[int, ...], boundaries: list[int]) -> tuple[int, ...]:
    """``values`` (read after the 0-based ``steps``) with the jump across each epoch's end
    taken out: the evaluation that runs there allocates (score records, the held-out
    batches' reads) once per epoch, which is not growth per training step. A leak per
    step still grows within every epoch; only one step's worth per epoch is left out."""
    out, shift, prev = [], 0, None
    for value, step in zip(values, steps):
        if prev is not None and any(prev[1] < b <= step for b in boundaries):
            shift += value - prev[0]
        prev = (value, step)
        out.append(value - shift)
    return tuple(out)


class TrainingMemoryLeakCheck(Check):
    """Memory in use climbs steadily over the short training run: something keeps each step's tensors.

    The same test as ``memory-leak`` on the budgeted training run over the whole
    loader, which also exercises the dataset and the evaluation passes: a dataset
    that keeps what it loads, a model that caches outputs in evaluation too. The
    jump in memory across each epoch's end (where the evaluation runs and allocates
    once per epoch) is taken out before the slope is read: with a few steps per epoch
    it otherwise reads as growth per step (a healthy 4-step-per-epoch run drifted by
    3.3 kB a step on a busy CI machine, above the 3 kB floor).
    """

    name = "memory-leak-training"
    stage = Stage.EVALUATE
    order = 80
    requires = ("forward_pass",)
    emits = ("memory-leak",)

    def run(self, ctx):
        run = training_run.main_run(ctx)
        res = run.resources
        boundaries = [e.steps for e in run.epochs[:-1]]  # the first step after each epoch's evaluation
        if boundaries and res.memory:
            res = dataclasses.replace(
                res, memory=_levelled(res.memory, res.memory_steps, boundaries),
                host_memory=_levelled(res.host_memory, res.memory_steps, boundaries) if res.host_memory else ())
        leak = leak_judgement(ctx, res, "short training run")
        return [] if leak is None else [self.judged(leak)]
