"""Memory that grows step after step while one batch is overfitted (the overfit stage)."""

from __future__ import annotations

import torch

from dldoctor.core.check import Check
from dldoctor.core.stage import Stage
from dldoctor.probes.overfit import experiments
from dldoctor.probes.resources.memory_model import auto_budget
from dldoctor.readings import leaks as leak_verdict


def leak_findings(check: Check, ctx, record, run_label: str) -> list:
    """The memory-leak finding of one run's record (shared by both memory-leak checks)."""
    cfg = ctx.config.section("memory_leak")
    device = auto_budget(ctx.device)
    host = auto_budget(torch.device("cpu")) if ctx.device.type == "cuda" else None
    leak = leak_verdict.judge(record, cfg, device, host)
    if leak is None:
        return []
    try:
        per_epoch = len(ctx.loader("train"))
    except TypeError:
        per_epoch = None
    parts = leak_verdict.finding_parts(leak, run_label, per_epoch, float(cfg["confidence"]))
    return [check.finding("memory-leak", leak.severity, parts.pop("confidence"), **parts)]


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
        return leak_findings(self, ctx, curve.resources, "single-batch run")
