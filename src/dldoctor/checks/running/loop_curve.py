"""Script mode: the loss of the user's own steps, read as the overfit stage reads its curves."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop
from dldoctor.api.read import curves

#: Steps in the running median that smooths the per-batch losses before they are read: a
#: different batch each step makes the raw curve jump by its batch-to-batch spread, and a
#: single hard batch must not read as a divergence.
SMOOTHING = 5


def smoothed(losses: Sequence[float]) -> list[float]:
    """Running median over ``SMOOTHING`` steps (centred; the ends use what they have)."""
    half = SMOOTHING // 2
    return [statistics.median(losses[max(0, i - half): i + half + 1]) for i in range(len(losses))]


def judge_loop_curve(loop: WatchedLoop, cfg: Mapping[str, float]) -> Judgement | None:
    """The script's loss turning NaN/Inf, or exploding (and staying up), within the watched steps.

    Only these two: over a few dozen mini-batches a plateau or a slow fall is not yet a fault
    (the overfit stage tests those by experiment), but a loss that turns NaN or ends 10x above
    where it started is one the script will not recover from.
    """
    steps = [s for s in loop.steps if s.optimizer == 0 and s.loss is not None]
    if len(loop.optimizers) != 1 or len(steps) < SMOOTHING:
        return None  # two optimizers (a GAN) play against each other: their losses may rise
    losses = [float(s.loss) for s in steps if s.loss is not None]
    where = loop.backward_line or loop.step_line or "loop"
    bad = next((i for i, x in enumerate(losses) if not math.isfinite(x)), None)
    norms = [s.grad_norm for s in steps]
    if bad is not None:
        if bad < SMOOTHING:
            return None  # NaN from the start: a fault in the data or the loss, which the forward checks name
        before = smoothed(losses[:bad])
        rose = max(before) / max(abs(before[0]), 1e-12)
        finite_norms = [n for n in norms[:bad] if n is not None and math.isfinite(n)]
        grew = (finite_norms[-1] / max(finite_norms[0], 1e-12)) if len(finite_norms) >= 2 else 1.0
        diverged = rose > 2.0 or grew > 10.0
        return Judgement(
            "lr-too-high" if diverged else "numerical-instability", Severity.ERROR, 0.8 if diverged else 0.7,
            f"The script's loss turns {losses[bad]} at step {steps[bad].index + 1}",
            (f"the loss of the script's own steps: {curves.sparkline(before)} {before[0]:.4g} -> {losses[bad]} at step "
             f"{steps[bad].index + 1} of {len(loop.steps)} watched",
             f"before it, the loss rose {rose:.3g}x and the gradient norm {grew:.3g}x"
             + (": it diverged first" if diverged else ": no divergence first, a NaN/Inf from one operation")),
            None, {"first_nonfinite_step": steps[bad].index, "loss_rise": rose, "grad_norm_growth": grew}, where)
    curve = smoothed(losses)
    reading = curves.read_curve(curve, cfg)
    if reading.shape != "explodes" or not reading.final > reading.initial:
        return None
    return Judgement(
        "lr-too-high", Severity.WARNING, 0.7,
        f"The script's loss rises {reading.peak / max(abs(reading.initial), 1e-12):.3g}x within its first "
        f"{len(loop.steps)} steps",
        (f"the loss of the script's own steps (running median of {SMOOTHING}): {curves.sparkline(curve)} "
         f"{reading.initial:.4g} -> peak {reading.peak:.4g}, ends at {reading.final:.4g}",),
        None, {"initial": reading.initial, "peak": reading.peak, "final": reading.final}, where)


class LoopCurveCheck(Check):
    """Script mode: the loss of the script's own steps does not turn NaN or explode.

    Reads the scalar given to ``backward()`` at each watched step of the first optimizer,
    smoothed by a running median, with the overfit stage's curve reader (its thresholds:
    ``overfit.explode_factor``).
    """

    name = "loop-curve"
    stage = Stage.RUN
    order = 5
    requires = ("script",)
    emits = ("lr-too-high", "numerical-instability")

    def run(self, ctx):
        verdict = judge_loop_curve(ctx.watched, dict(ctx.config.section("overfit")))
        return [self.judged(verdict)] if verdict is not None else []
