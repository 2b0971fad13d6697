"""The learning-rate range test check: is the spec's learning rate 10x off a confident suggestion?"""

from __future__ import annotations

from typing import Any

from dldoctor.api import Check, Stage, keys, lookup
from dldoctor.api.measure import Sweep, lr_sweep
from dldoctor.api.read import LrReading, read_sweep, verdict


def range_test(ctx) -> tuple[Sweep, LrReading]:
    """Sweep the learning rate on a fresh model (config ``lr_finder``) and read the curve."""
    cfg = ctx.config.section("lr_finder")

    def run() -> tuple[Sweep, LrReading]:
        sweep = lr_sweep(ctx, float(cfg["lr_low"]), float(cfg["lr_high"]), int(cfg["steps"]),
                         float(cfg["diverge_factor"]), float(cfg["running_smoothing"]), float(cfg["margin"]))
        return sweep, read_sweep(sweep.lrs, sweep.losses, sweep.stopped_by, cfg)

    return ctx.measure(keys.LR_RANGE, run)


def report(sweep: Sweep, reading: LrReading) -> dict[str, Any]:
    """Plain data for the JSON report and the plot."""
    return {"sweep": sweep.to_dict(), "reading": reading.to_dict(), "summary": reading.summary()}


class LrRangeCheck(Check):
    """Sweeps the learning rate on a fresh model and reports a spec rate 10x off a confident suggestion.

    Runs in ``--profile thorough`` and first in ``dldoctor tune`` (100 training steps).
    The rate is too low when it lies more than 10x below the suggestion and below
    where the sweep's loss starts to fall; too high when it lies more than 10x above
    the suggestion and beyond the sweep's minimum. No clear minimum, no verdict.
    """

    name = "lr-range"
    stage = Stage.TUNE
    order = 10
    requires = ("forward_pass", "config:lr_finder.enabled")
    emits = ("lr-too-high", "lr-too-low")

    def run(self, ctx):
        cfg = ctx.config.section("lr_finder")
        sweep, reading = range_test(ctx)
        ctx.reports[keys.LR_RANGE_REPORT] = report(sweep, reading)
        away = float(cfg["away_factor"])
        found = verdict(reading, sweep.base_lr, away)
        if found is None:
            return []
        lr = sweep.base_lr
        curve = (f"learning-rate range test ({len(sweep.losses)} steps, lr {sweep.low:.3g} to {sweep.high:.3g}): "
                 f"the loss falls from {reading.initial_loss:.4g} to {reading.min_loss:.4g} between lr "
                 f"{reading.descent_low:.3g} and {reading.descent_high:.3g}, then "
                 + ("diverges" if sweep.stopped_by in ("diverged", "nan") else "rises"))
        suggestion = f"suggested learning rate {reading.suggestion:.3g} ({reading.confidence:.0%} confidence)"
        metrics = {"spec_lr": lr, "suggested_lr": reading.suggestion, "descent_low": reading.descent_low,
                   "descent_high": reading.descent_high, "confidence": reading.confidence,
                   "sweep_steps": len(sweep.losses)}
        if found == "too-low":
            where = (f"the spec's learning rate {lr:.3g} is {reading.suggestion / lr:.0f}x below the suggestion and "
                     f"{reading.descent_low / lr:.0f}x below the rate where the loss starts to fall: at it the sweep "
                     "barely moved the loss")
            diagnosis, title = "lr-too-low", (f"learning rate {lr:.3g} is {reading.suggestion / lr:.0f}x below the "
                                              f"range test's suggestion {reading.suggestion:.3g}")
            first = f"Raise the learning rate to about {reading.suggestion:.2g} (the middle of the descent)."
        else:
            where = (f"the spec's learning rate {lr:.3g} is {lr / reading.suggestion:.0f}x above the suggestion and "
                     f"beyond the minimum at {reading.descent_high:.3g}: at it the sweep's loss was rising")
            diagnosis, title = "lr-too-high", (f"learning rate {lr:.3g} is {lr / reading.suggestion:.0f}x above the "
                                               f"range test's suggestion {reading.suggestion:.3g}")
            first = f"Lower the learning rate to about {reading.suggestion:.2g} (the middle of the descent)."
        fixes = (first, "Search it with the other hyper-parameters: dldoctor tune TARGET",
                 *lookup(diagnosis).fixes)
        return [self.finding(diagnosis, "warning", 0.5 + 0.4 * reading.confidence, title=title,
                             evidence=[where, curve, suggestion], fixes=fixes, metrics=metrics,
                             location="optimizer")]
