"""Script mode: does the learning-rate schedule run at the pace it was set for?"""

from __future__ import annotations

import math

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop


def judge_schedule(loop: WatchedLoop, collapse: float) -> Judgement | None:
    """The learning rate collapsing within the watched steps while training goes on.

    A schedule set in epochs (StepLR(step_size=10), CosineAnnealingLR(T_max=epochs)) but
    stepped per batch runs its whole course in a few dozen steps. Only a run that dldoctor
    stopped counts (the script was still training): a short script whose schedule ends
    near zero at its last step is doing what it was told.
    """
    if loop.stopped != "budget" or not loop.scheduler_steps:
        return None
    lrs = [s.lr[0] for s in loop.steps if s.optimizer == 0 and s.lr and math.isfinite(s.lr[0])]
    if len(lrs) < 4:
        return None
    peak_at = max(range(len(lrs)), key=lambda i: lrs[i])
    peak = lrs[peak_at]
    low = min(lrs[peak_at:])
    if peak <= 0 or low / peak >= collapse:
        return None
    fell_at = next(i for i in range(peak_at, len(lrs)) if lrs[i] / peak < collapse)
    per_step = len(loop.scheduler_steps) / max(len(lrs), 1)
    cadence = ("once per optimizer step" if per_step > 0.5 else
               f"{len(loop.scheduler_steps)} times in {len(lrs)} steps")
    epoch = loop.train_batches_per_epoch
    where = f" ({epoch} batches per epoch)" if epoch else ""
    return Judgement(
        "lr-too-low", Severity.WARNING, 0.8,
        f"The learning rate falls {peak / max(low, 1e-300):.3g}x within the first {fell_at + 1} steps",
        (f"the learning rate went from {peak:.3g} to {low:.3g} by step {lrs.index(low, peak_at)} of the "
         f"{len(lrs)} watched{where}, and the script was still training",
         f"{loop.scheduler_name or 'the scheduler'}.step() ran {cadence}: a schedule set in epochs (step_size, "
         "T_max, milestones) runs its whole course in a few batches when stepped per batch"),
        (f"Step {loop.scheduler_name or 'the scheduler'} once per epoch (after the epoch's loop), or set it in "
         "batches (step_size / T_max / total_steps = epochs x batches per epoch).",),
        {"lr_peak": peak, "lr_low": low, "scheduler_steps": len(loop.scheduler_steps), "steps": len(lrs)},
        loop.step_line or "loop")


class LoopScheduleCheck(Check):
    """Script mode: the learning-rate scheduler does not collapse the rate within the first steps.

    Reads the learning rate of the first parameter group at each watched optimizer step
    and the calls of the scheduler's step().
    """

    name = "loop-schedule"
    stage = Stage.RUN
    order = 3
    requires = ("script",)
    emits = ("lr-too-low",)

    def run(self, ctx):
        verdict = judge_schedule(ctx.watched, float(ctx.config.get("script.lr_collapse")))
        return [self.judged(verdict)] if verdict is not None else []
