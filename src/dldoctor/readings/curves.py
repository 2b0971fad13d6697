"""Read a loss curve: converged, decreasing, plateau, goes up, explodes, oscillates.

A pure function of the losses and the thresholds, so it is tested on synthetic curves.
The shapes follow the methodology's table: each points to a different set of causes.
Also what the overfit checks read from their runs (``probes.overfit.experiments``): a
run's reading, whether an experiment fixed the baseline, and a one-line sparkline.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence

from dldoctor.probes.overfit import experiments
from dldoctor.probes.overfit.experiments import convergence_target
from dldoctor.probes.overfit.one_batch import Curve

SHAPES = ("converged", "decreasing", "plateau", "goes-up", "explodes", "oscillates", "falls-below-zero")


@dataclasses.dataclass(frozen=True)
class CurveReading:
    """What the curve did, with the numbers that decided it."""

    shape: str
    initial: float
    final: float
    best: float
    steps: int
    converged_at: int | None = None
    first_nonfinite: int | None = None
    peak: float = math.nan

    @property
    def reduction(self) -> float:
        """Fraction of the initial loss removed by the end of the run."""
        if not math.isfinite(self.final) or self.initial == 0:
            return 0.0
        return (self.initial - self.final) / abs(self.initial)

    def describe(self) -> str:
        if self.shape == "converged":
            return f"loss {self.initial:.4g} -> {self.best:.3g}, converged at step {self.converged_at}"
        if self.shape == "explodes" and self.first_nonfinite is not None:
            return f"loss {self.initial:.4g} -> NaN/Inf at step {self.first_nonfinite}"
        if self.shape == "explodes":
            return (f"explodes: loss {self.initial:.4g} spikes to {self.peak:.4g}, ends at {self.final:.4g} "
                    f"after {self.steps} steps")
        change = f"{self.reduction:.0%} lower" if self.reduction >= 0 else f"{-self.reduction:.0%} higher"
        return (f"{self.shape}: loss {self.initial:.4g} -> {self.final:.4g} in {self.steps} steps "
                f"(best {self.best:.4g}, {change})")


def read_curve(losses: Sequence[float], cfg: Mapping[str, float], first_nonfinite: int | None = None,
               floor: float | None = None) -> CurveReading:
    """Classify a loss curve (the user's loss per step, before each update).

    ``floor``: the loss's minimum when it lies below 0 (``experiments.loss_floor``).
    """
    finite = [x for x in losses if math.isfinite(x)]
    if not finite:
        return CurveReading("explodes", math.nan, math.nan, math.nan, len(losses), None, 0)
    initial = finite[0]
    n = len(losses)
    if first_nonfinite is None:
        first_nonfinite = next((i for i, x in enumerate(losses) if not math.isfinite(x)), None)
    best = min(finite)
    tail = finite[-max(3, len(finite) // 10):]
    final = statistics.median(tail)
    target = convergence_target(initial, cfg, floor)
    converged_at = next((i for i, x in enumerate(finite) if x <= target), None)

    def reading(shape: str) -> CurveReading:
        return CurveReading(shape, initial, final, best, n, converged_at, first_nonfinite, max(finite))

    if first_nonfinite is not None:
        return reading("explodes")
    if converged_at is not None:
        return reading("converged")
    scale = max(abs(initial), 1e-12)
    if max(finite) > float(cfg["explode_factor"]) * scale and max(finite) > initial:
        return reading("explodes")
    if final < 0 and final < initial - max(abs(initial), 1.0):
        # Driven far below zero: for losses that cannot be negative (cross-entropy,
        # MSE) a sign flip; for others (Gaussian NLL) only a reading, not a verdict.
        return reading("falls-below-zero")
    if initial > 0 and final > initial * (1 + float(cfg["up_tol"])):
        return reading("goes-up")
    half = finite[len(finite) // 2:]
    if len(half) >= 8:
        mean = statistics.fmean(half)
        rel_std = statistics.pstdev(half) / max(abs(mean), 1e-12)
        diffs = [b - a for a, b in itertools.pairwise(half)]
        flips = sum(1 for a, b in itertools.pairwise(diffs) if a * b < 0) / max(1, len(diffs) - 1)
        if rel_std > float(cfg["osc_rel_std"]) and flips > float(cfg["osc_sign_changes"]):
            return reading("oscillates")
    if (initial - final) / scale < float(cfg["plateau_rel"]):
        return reading("plateau")
    # Stalled: it fell at first but the last half has stopped moving, short of the target.
    third_quarter = finite[len(finite) // 2: 3 * len(finite) // 4]
    if len(third_quarter) >= 4 and (statistics.median(third_quarter) - final) / scale < float(cfg["stall_rel"]):
        return reading("plateau")
    return reading("decreasing")


def reading(ctx, curve: Curve) -> CurveReading:
    return read_curve(curve.losses, dict(ctx.config.section("overfit")), curve.first_nonfinite,
                      experiments.loss_floor(ctx))


def crossing_noise(losses: Sequence[float], at: int, window: int = 5) -> float:
    """How many steps the step at which a loss curve first crossed its target is uncertain by.

    The step is read every step (a resolution of 1), but the loss jitters around its trend:
    a line fitted to the log-loss over ``window`` steps either side of the crossing gives the
    trend's slope and the jitter's spread, and the jitter divided by the slope is how far the
    crossing could move with the same trend (first-passage time). At least 1 step.
    """
    lo, hi = max(0, at - window), min(len(losses), at + window + 1)
    points = [(i, math.log(losses[i])) for i in range(lo, hi) if math.isfinite(losses[i]) and losses[i] > 0]
    if len(points) < 4:
        return 1.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    residual = math.sqrt(sum((y - (my + slope * (x - mx))) ** 2 for x, y in points) / (len(points) - 2))
    if slope >= 0:
        return float(hi - lo)  # no falling trend around the crossing: the whole window
    return max(1.0, min(float(hi - lo), residual / -slope))


def fitted_by_metric(curve: Curve, r: CurveReading) -> bool:
    """Every sample of the batch is classified right at the end of a run that did not fail.

    A loss with a floor (label smoothing, a penalty on the outputs) can stop short of
    the convergence target while the model fits the batch; the task metric, measured
    independently of the user's loss, says whether the batch is fitted.
    """
    return (r.shape in ("plateau", "decreasing") and curve.metric_name == "accuracy"
            and len(curve.metric) >= 3 and min(curve.metric[-3:]) >= 1.0)


def fixes_curve(ctx, experiment: CurveReading, base: CurveReading) -> bool:
    """Did the experiment fix what was wrong with the baseline curve?"""
    if experiment.shape == "converged":
        return True
    if experiment.shape in ("explodes", "goes-up", "oscillates", "falls-below-zero"):
        return False
    factor = float(dict(ctx.config.section("overfit"))["fix_factor"])
    if base.initial <= 0 and experiment.initial <= 0:
        # A loss that starts at or below zero gives no scale for "lower": a run that only
        # falls more slowly towards -inf must not count as a fix.
        return False
    if experiment.initial * base.initial < 0:
        # A negated objective: the two curves' values cannot be compared, so the
        # experiment must fix its own curve, removing at least 1 - 1/factor of it.
        drop = experiment.initial - experiment.final
        return drop >= (1 - 1 / factor) * abs(experiment.initial)
    base_final = base.final if base.shape not in ("explodes",) else base.initial
    return experiment.final * factor <= base_final and experiment.final < experiment.initial


def sparkline(values, width: int = 24) -> str:
    """A one-line picture of a curve (for evidence and the live view)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    step = max(1, len(values) // width)
    if min(finite) > 0 and max(finite) / min(finite) > 20:  # spikes would flatten the rest: log scale
        values = [math.log(v) if math.isfinite(v) else v for v in values]
        finite = [math.log(v) for v in finite]
    sampled = [values[i] for i in range(0, len(values), step)][:width]
    lo, hi = min(finite), max(finite)
    bars = "▁▂▃▄▅▆▇█"
    out = []
    for v in sampled:
        if not math.isfinite(v):
            out.append("!")
        else:
            out.append(bars[0 if hi == lo else int((v - lo) / (hi - lo) * (len(bars) - 1))])
    return "".join(out)
