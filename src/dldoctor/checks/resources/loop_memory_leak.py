"""Script mode: memory that grows step after step in the user's own loop."""

from __future__ import annotations

from dldoctor.api import Check, Stage
from dldoctor.api.read import leak_judgement


class LoopMemoryLeakCheck(Check):
    """Memory in use climbs steadily over the watched steps of the script's own loop.

    The same test as ``memory-leak`` (a Theil-Sen slope after warm-up, over the whole
    run and its second half), on the memory read after each optimizer step of the user's
    loop. What only the user's loop does shows here and in no staged run: a running total
    ``total_loss += loss`` that keeps every step's autograd graph, outputs appended to a
    list for later, a hidden state carried across batches without ``detach()``.
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
        leak = leak_judgement(ctx, loop.resources, "script's own loop", loop.train_batches_per_epoch,
                              loop.backward_line or loop.step_line)
        return [] if leak is None else [self.judged(leak)]
