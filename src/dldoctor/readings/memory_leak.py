"""The memory-leak judgement of one run's resource record, shared by both memory-leak checks
(the single-batch run and the short training run)."""

from __future__ import annotations

from typing import Any

import torch

from dldoctor.core.judgement import Judgement
from dldoctor.probes.resources.memory_model import auto_budget
from dldoctor.probes.resources.monitor import ResourceRecord
from dldoctor.readings import leaks


def leak_judgement(ctx: Any, record: ResourceRecord, run_label: str, steps_per_epoch: int | None = None,
                   location: str = "") -> Judgement | None:
    """``memory-leak`` when the record's memory climbs steadily (config ``memory_leak``), else None.

    ``steps_per_epoch``: for the projection in epochs (default: the spec's training loader's
    length); ``location``: where to point when no attribute of the run's objects grew.
    """
    cfg = ctx.config.section("memory_leak")
    device = auto_budget(ctx.device)
    host = auto_budget(torch.device("cpu")) if ctx.device.type == "cuda" else None
    leak = leaks.judge(record, cfg, device, host)
    if leak is None:
        return None
    per_epoch = steps_per_epoch
    if per_epoch is None and ctx.spec is not None:
        try:
            per_epoch = len(ctx.loader("train"))
        except TypeError:
            per_epoch = None
    parts = leaks.finding_parts(leak, run_label, per_epoch, float(cfg["confidence"]))
    if location and not leak.culprit:
        parts["location"] = location
    return Judgement("memory-leak", leak.severity, parts["confidence"], title=parts["title"] or "",
                     evidence=tuple(parts["evidence"]),
                     fixes=tuple(parts["fixes"]) if parts["fixes"] is not None else None,
                     metrics=parts["metrics"], location=parts["location"])
