"""Judge a run's memory series: is it a leak, how fast, when does memory run out, what grows.

Shared by the two memory-leak checks (the single-batch runs of the overfit stage and
the short training run of the evaluate stage). Thresholds come from the
``memory_leak`` config section; the numbers from ``probes.resources``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from dldoctor.core.catalogue import get as catalogue_entry
from dldoctor.core.severity import Severity
from dldoctor.probes.resources.holders import Growth, growth
from dldoctor.probes.resources.monitor import ResourceRecord
from dldoctor.probes.resources.trend import Trend, trend
from dldoctor.runtime.units import format_bytes

#: Bytes one autograd node kept alive costs (C++ node, edges, saved-variable slots;
#: measured with mallinfo2 on torch 2.x: 700-900 B). Ranks a growing graph against
#: growing tensor bytes when saying where memory goes.
NODE_BYTES = 800


@dataclasses.dataclass(frozen=True)
class Leak:
    """A series that climbs steadily after warm-up, with what it means."""

    trend: Trend
    source: str
    severity: Severity
    available: tuple[int, str] | None
    projected_steps: float | None
    growth: tuple[Growth, ...]

    @property
    def slope(self) -> float:
        return self.trend.whole.slope

    @property
    def culprit(self) -> Growth | None:
        return self.growth[0] if self.growth else None


def held_bytes(g: Growth) -> float:
    """Bytes per step a growing path keeps: its tensors plus the graph nodes they keep alive."""
    return g.per_step.bytes + g.per_step.graph_nodes * NODE_BYTES


def detect(series: Sequence[int], cfg: Mapping[str, Any], own_bytes_per_step: float = 0.0,
           steps: Sequence[int] | None = None) -> Trend | None:
    """The series' trend when it is a leak by the config's rules, else None.

    ``own_bytes_per_step``: what the run's own records add per step, on top of the floor.
    ``steps``: the step of each value (default: one value per step).
    """
    t = _leak_trend(series, cfg, own_bytes_per_step, steps)
    if t is None:
        return None
    # A leak climbs step after step (or burst after burst); one level shift (kernels built for a new input
    # shape, such as an epoch's last, smaller batch; a cache filled once) is not one. So where a single rise
    # between two readings makes more than half of the window's climb, the climb must still be there without
    # it. Measured: the digits CNN script's last partial batch of its first epoch raised malloc's in-use bytes
    # by 175 kB once (70% of its window's climb), which read as 5.0 kB/step with 17.8 kB/step over the last
    # half; without that rise, below the floor. A steady leak's largest rise is one interval's growth, and
    # a leak in bursts has several of them, so neither is touched.
    shifted = _without_dominant_rise(series, steps, t.start)
    if shifted is not None and _leak_trend(shifted, cfg, own_bytes_per_step, steps) is None:
        return None
    return t


def _leak_trend(series: Sequence[int], cfg: Mapping[str, Any], own_bytes_per_step: float,
                steps: Sequence[int] | None) -> Trend | None:
    t = trend(series, float(cfg["warmup_fraction"]), int(cfg["warmup_min_steps"]), int(cfg["min_steps"]),
              float(cfg["confidence"]), steps=steps)
    if t is None:
        return None
    whole, tail = t.whole, t.tail
    if whole.low <= 0 or whole.slope < float(cfg["min_bytes_per_step"]) + own_bytes_per_step:
        return None
    if tail.low <= 0 or tail.slope < float(cfg["persist_ratio"]) * whole.slope:
        return None
    return t


def _without_dominant_rise(series: Sequence[int], steps: Sequence[int] | None, start: int) -> list[int] | None:
    """``series`` with its largest rise between consecutive readings from step ``start`` on taken out of
    every later reading, when that one rise is more than half of the climb from ``start`` to the end; None
    when no single rise is."""
    at = list(steps) if steps is not None else list(range(len(series)))
    values = list(series)
    window = [k for k in range(1, len(values)) if at[k - 1] >= start]
    if not window:
        return None
    rise, k = max((values[k] - values[k - 1], k) for k in window)
    climb = values[-1] - values[window[0] - 1]
    if rise <= 0 or rise <= 0.5 * climb:
        return None
    return values[:k] + [v - rise for v in values[k:]]


def judge(record: ResourceRecord, cfg: Mapping[str, Any], available_device: tuple[int, str] | None,
          available_host: tuple[int, str] | None) -> Leak | None:
    """A leak in the run's device memory (or, on CUDA, its host memory), or None."""
    floor = {**cfg, "min_bytes_per_step": cfg["min_bytes_per_step_rss"]} if record.memory_coarse else cfg
    for series, source, available, rule in ((record.memory, record.memory_source, available_device, floor),
                                            (record.host_memory, record.host_source, available_host, cfg)):
        steps = record.memory_steps if len(record.memory_steps) == len(series) else None
        found = detect(series, rule, record.own_bytes_per_step, steps) if series else None
        if found is None:
            continue
        projected = available[0] / found.whole.slope if available and found.whole.slope > 0 else None
        severity = Severity.ERROR if projected is not None and projected <= float(cfg["horizon_steps"]) \
            else Severity.WARNING
        grown = tuple(g for g in growth(record.snapshots) if g.still_growing and held_bytes(g) > 0)
        grown = tuple(sorted(grown, key=lambda g: (-held_bytes(g), g.path)))
        return Leak(found, source, severity, available, projected, grown)
    return None


# -- words ------------------------------------------------------------------------------
def _what_grew(g: Growth) -> str:
    parts = []
    if g.total.tensors >= 1:
        parts.append(f"+{g.total.tensors:,.0f} tensors ({format_bytes(g.total.bytes)})")
    if g.total.graph_nodes >= 1:
        parts.append(f"+{g.total.graph_nodes:,.0f} autograd nodes kept alive")
    if g.total.items >= 1 and g.total.tensors < 1:
        parts.append(f"+{g.total.items:,.0f} entries")
    return f"{g.path}: " + ", ".join(parts) + f" over {g.steps} steps"


def culprit_text(g: Growth) -> str:
    """What the growing path does wrong, in a few words."""
    if g.per_step.graph_nodes > 0 and g.per_step.tensors < 0.5:
        return f"{g.path} chains every step's autograd graph onto the last"
    if g.per_step.graph_nodes > 0:
        return f"{g.path} keeps tensors with their autograd graphs"
    if g.per_step.tensors > 0:
        return f"{g.path} keeps tensors from every step"
    return f"{g.path} gains an entry every step"


def culprit_fix(g: Growth) -> str:
    if g.per_step.graph_nodes > 0 and g.per_step.tensors < 0.5:
        return (f"{g.path} is a tensor that adds each step's loss to itself with its graph (x = x + loss): "
                "accumulate a number instead (x += loss.item()) or a detached tensor (x += loss.detach()).")
    if g.per_step.graph_nodes > 0:
        return (f"Keep detached values in {g.path}: append t.detach() (or t.item() for a scalar, "
                "t.detach().cpu() for anything kept for metrics) so no step's graph stays alive; "
                "or do not keep them across steps at all.")
    if g.per_step.tensors > 0:
        return (f"Bound {g.path}: clear it every step or keep only the last few "
                "(collections.deque(maxlen=k)); move what must stay to the CPU.")
    return (f"{g.path} gains an entry every step (a hook or callback registered inside the loop or "
            "forward?): register it once, outside, and keep its handle to .remove() it.")


def _share(fraction: float) -> str:
    """How much of the measured growth a path's estimate accounts for (estimates are rough)."""
    return ", about all of the growth" if fraction >= 0.8 else f", about {fraction:.0%} of the growth"


def finding_parts(leak: Leak, run_label: str, steps_per_epoch: int | None, level: float) -> dict[str, Any]:
    """Title, evidence, fixes, metrics and location of a leak finding."""
    t = leak.trend
    rate = format_bytes(leak.slope)
    culprit = leak.culprit
    where = f" ({culprit_text(culprit)})" if culprit else ""
    evidence = [
        f"over steps {t.start + 1}-{t.end + 1} of the {run_label}, {leak.source} rose by "
        f"{format_bytes(t.last_level - t.first_level)} ({format_bytes(t.first_level)} to "
        f"{format_bytes(t.last_level)}): Theil-Sen slope {rate}/step "
        f"({level:.0%} interval {format_bytes(t.whole.low)}-{format_bytes(t.whole.high)}), still "
        f"{format_bytes(t.tail.slope)}/step over the last half of the run",
    ]
    evidence += [_what_grew(g) + _share(held_bytes(g) / leak.slope) for g in leak.growth[:3]]
    if not leak.growth:
        evidence.append("no attribute of the model, the loss function, the spec's forward, the optimiser "
                        "or the dataset grew: look for module-level lists, caches or globals your code fills")
    projection = None
    if leak.projected_steps is not None and leak.available is not None:
        epochs = (f" (about {leak.projected_steps / steps_per_epoch:,.0f} epochs of {steps_per_epoch:,} steps)"
                  if steps_per_epoch else "")
        projection = (f"at this rate the {format_bytes(leak.available[0])} still available "
                      f"({leak.available[1]}) run out after about {leak.projected_steps:,.0f} more steps{epochs}")
        evidence.append(projection)
    fixes = [culprit_fix(culprit)] if culprit else []
    fixes += [f for f in catalogue_entry("memory-leak").fixes if f not in fixes]
    title = f"memory grows by {rate} per training step{where}"
    if leak.severity is Severity.ERROR and leak.projected_steps is not None:
        title += f"; it runs out after ~{leak.projected_steps:,.0f} steps"
    metrics = {
        "bytes_per_step": leak.slope, "bytes_per_step_low": t.whole.low, "bytes_per_step_high": t.whole.high,
        "tail_bytes_per_step": t.tail.slope, "steps_judged": t.points, "warmup_steps": t.start,
        "memory_source": leak.source, "available_bytes": leak.available[0] if leak.available else None,
        "projected_steps_to_exhaustion": leak.projected_steps,
        "culprit": culprit.path if culprit else "",
        "culprit_bytes_per_step": held_bytes(culprit) if culprit else None,
        "culprit_tensors_per_step": culprit.per_step.tensors if culprit else None,
        "culprit_graph_nodes_per_step": culprit.per_step.graph_nodes if culprit else None,
    }
    located = culprit is not None and held_bytes(culprit) >= 0.3 * leak.slope
    confidence = 0.9 if located else 0.7
    return {"title": title, "evidence": evidence, "fixes": fixes, "metrics": metrics,
            "location": culprit.path if culprit else "training step", "confidence": confidence}
