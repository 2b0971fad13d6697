"""Memory that grows step after step during the short training run (the evaluate stage)."""

from __future__ import annotations

from dldoctor.api import Check, Stage
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import leak_judgement


class TrainingMemoryLeakCheck(Check):
    """Memory in use climbs steadily over the short training run: something keeps each step's tensors.

    The same test as ``memory-leak`` on the budgeted training run over the whole
    loader, which also exercises the dataset and the evaluation passes: a dataset
    that keeps what it loads, a model that caches outputs in evaluation too.
    """

    name = "memory-leak-training"
    stage = Stage.EVALUATE
    order = 80
    requires = ("forward_pass",)
    emits = ("memory-leak",)

    def run(self, ctx):
        run = training_run.main_run(ctx)
        leak = leak_judgement(ctx, run.resources, "short training run")
        return [] if leak is None else [self.judged(leak)]
