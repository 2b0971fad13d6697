"""The range test of one context, measured once and read once (memoised)."""

from __future__ import annotations

from typing import Any

from dldoctor.tuning.lr_suggest import LrReading, read_sweep
from dldoctor.tuning.lr_sweep import Sweep, lr_sweep


def range_test(ctx) -> tuple[Sweep, LrReading]:
    """Sweep the learning rate on a fresh model (config ``lr_finder``) and read the curve."""
    cfg = ctx.config.section("lr_finder")

    def run() -> tuple[Sweep, LrReading]:
        sweep = lr_sweep(ctx, float(cfg["lr_low"]), float(cfg["lr_high"]), int(cfg["steps"]),
                         float(cfg["diverge_factor"]), float(cfg["running_smoothing"]), float(cfg["margin"]))
        return sweep, read_sweep(sweep.lrs, sweep.losses, sweep.stopped_by, cfg)

    return ctx.measure("lr_range", run)


def report(sweep: Sweep, reading: LrReading) -> dict[str, Any]:
    """Plain data for the JSON report and the plot."""
    return {"sweep": sweep.to_dict(), "reading": reading.to_dict(), "summary": reading.summary()}
