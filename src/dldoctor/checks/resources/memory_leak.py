"""Memory that grows step after step while one batch is overfitted (the overfit stage)."""

from __future__ import annotations

from dldoctor.api import Check, Stage
from dldoctor.api.measure import experiments
from dldoctor.api.read import leak_judgement


class MemoryLeakCheck(Check):
    """Memory in use climbs steadily during the single-batch run: something keeps each step's tensors.

    Reads the memory after every step of the overfit stage's baseline run (CUDA's
    allocated bytes, else malloc's in-use bytes) and tests for a steady climb after
    warm-up with a Theil-Sen slope and its confidence interval, over the whole run and
    over its second half. Snapshots of what the model, the loss function, the spec's
    forward and the optimiser hold, taken as the run goes, say which attribute grows.
    """

    name = "memory-leak"
    stage = Stage.OVERFIT
    order = 90
    requires = ("forward_pass",)
    emits = ("memory-leak",)

    def run(self, ctx):
        curve = experiments.baseline(ctx)
        leak = leak_judgement(ctx, curve.resources, "single-batch run")
        return [] if leak is None else [self.judged(leak)]
