"""The curves a run recorded, as plain data, so that a saved report can still be drawn.

:func:`collect` reads the context at the end of a run and returns the diagnosis's
``series`` (the JSON report's top-level ``"series"``): lists of plain numbers, each
at most :data:`MAX_POINTS` long (longer ones are thinned evenly, keeping both ends),
a non-finite value written as ``null``. Every key is optional:

``overfit``
    the single-batch runs, one entry each: ``{"label", "lr", "baseline", "steps",
    "loss"}`` (``baseline``: the run as configured, the others are experiments).
``training``
    the short training run, per epoch: ``{"error_name", "epoch", "train_loss",
    "val_loss", "test_loss", "train_error", "val_error", "test_error"}`` (``null``
    where a split was not scored).
``resources``
    memory and step time of one training run: ``{"run", "memory_source",
    "memory_steps", "memory_bytes", "time_steps", "compute_s", "wait_s"}``; ``run``
    names which run (the short training run, else the single-batch run as configured,
    else the script's own loop).
``watched_loss``
    script mode: the loss of the script's own steps, ``{"steps", "loss"}``.

The learning-rate range test and the error decomposition already travel as plain
data in ``reports`` (``lr_range``, ``bias_variance``), and are drawn from there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The most points one list of a series keeps.
MAX_POINTS = 200

BASELINE_LABEL = "as configured"


def _plain(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def thin_indices(length: int, limit: int = MAX_POINTS) -> list[int]:
    """At most ``limit`` indices into a list of ``length``, evenly spread, first and last included."""
    if length <= limit:
        return list(range(length))
    if limit < 2:
        return [0]
    return sorted({round(i * (length - 1) / (limit - 1)) for i in range(limit)})


def thin(xs: Sequence[Any], *columns: Sequence[Any], limit: int = MAX_POINTS) -> list[list[Any]]:
    """``xs`` and each column (the same length) thinned at the same indices, as plain lists."""
    keep = thin_indices(len(xs), limit)
    out = [[xs[i] for i in keep]]
    out += [[_plain(column[i]) if i < len(column) else None for i in keep] for column in columns]
    return out


def overfit_series(curves: Iterable[Any]) -> list[dict[str, Any]]:
    """One entry per single-batch run (``probes.overfit.one_batch.Curve``), the run as configured first."""
    entries: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for curve in sorted(curves, key=lambda c: (c.label != BASELINE_LABEL, c.label)):
        label = curve.label or BASELINE_LABEL
        seen[label] = seen.get(label, 0) + 1
        steps, losses = thin(list(range(len(curve.losses))), curve.losses)
        entries.append({"label": label if seen[label] == 1 else f"{label} #{seen[label]}",
                        "lr": _plain(curve.lr), "baseline": label == BASELINE_LABEL and seen[label] == 1,
                        "steps": steps, "loss": losses})
    return entries


def training_series(run: Any) -> dict[str, Any] | None:
    """The short training run (``probes.training.short.TrainingRun``), per epoch; None without an epoch."""
    if run is None or not run.epochs:
        return None

    def column(split: str, what: str) -> list[float | None]:
        return [_plain(getattr(getattr(e, split), what)) if getattr(e, split) is not None else None
                for e in run.epochs]

    series: dict[str, Any] = {"error_name": run.error_name, "epoch": [int(e.epoch) for e in run.epochs]}
    for split in ("train", "val", "test"):
        series[f"{split}_loss"] = column(split, "loss")
        series[f"{split}_error"] = column(split, "error")
    return series


def resource_series(record: Any, run: str) -> dict[str, Any] | None:
    """Memory and step time of a ``probes.resources.monitor.ResourceRecord``; None when it holds no step."""
    if record is None or (not record.memory and not record.compute_s):
        return None
    memory_steps, memory = thin(list(record.memory_steps)[:len(record.memory)], record.memory)
    time_steps, compute, wait = thin(list(range(len(record.compute_s))), record.compute_s, record.wait_s)
    return {"run": run, "memory_source": record.memory_source, "memory_steps": memory_steps,
            "memory_bytes": memory, "time_steps": time_steps, "compute_s": compute, "wait_s": wait}


def watched_series(watched: Any) -> dict[str, Any] | None:
    """Script mode: the loss of each step of the script's own loop; None when none was read."""
    if watched is None:
        return None
    points = [(s.index, s.loss) for s in watched.steps if s.loss is not None]
    if not points:
        return None
    steps, losses = thin([p[0] for p in points], [p[1] for p in points])
    return {"steps": steps, "loss": losses}


def collect(ctx: Any) -> dict[str, Any]:
    """The ``series`` of a finished run, from what its checks measured (empty when nothing was)."""
    from dldoctor.probes import keys
    from dldoctor.probes.overfit.one_batch import Curve
    from dldoctor.probes.training.short import TrainingRun

    curves: list[Any] = []
    for key, value in ctx.measurements.items():
        if isinstance(value, Curve):
            curves.append(value)
        elif key == keys.LARGER_MODEL and isinstance(value, tuple) and len(value) == 2 \
                and isinstance(value[1], Curve):
            curves.append(value[1] if value[1].label else _relabelled(value[1], "larger model"))
    series: dict[str, Any] = {}
    if curves:
        series["overfit"] = overfit_series(curves)
    main = ctx.measurements.get(keys.TRAINING_MAIN)
    training = training_series(main) if isinstance(main, TrainingRun) else None
    if training:
        series["training"] = training
    resources = _resources(main, curves, getattr(ctx, "watched", None))
    if resources:
        series["resources"] = resources
    watched = watched_series(getattr(ctx, "watched", None))
    if watched:
        series["watched_loss"] = watched
    return series


def _relabelled(curve: Any, label: str) -> Any:
    import dataclasses

    return dataclasses.replace(curve, label=label)


def _resources(main: Any, curves: Sequence[Any], watched: Any) -> dict[str, Any] | None:
    candidates: list[tuple[Any, str]] = []
    if main is not None:
        candidates.append((getattr(main, "resources", None), "short training run"))
    baseline = next((c for c in curves if c.label == BASELINE_LABEL), None)
    if baseline is not None:
        candidates.append((baseline.resources, f"single-batch run ({BASELINE_LABEL})"))
    if watched is not None:
        candidates.append((getattr(watched, "resources", None), "the script's own loop"))
    for record, run in candidates:
        found = resource_series(record, run)
        if found:
            return found
    return None


def decomposition(report: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """The bias-variance report's parts as ``(name, value)``: irreducible first, then its components."""
    if not report:
        return []
    parts = [("irreducible", _plain(report.get("irreducible")) or 0.0)]
    parts += [(str(name), value) for name, raw in dict(report.get("components") or {}).items()
              if (value := _plain(raw)) is not None]
    return parts
