"""Distributed script mode: did the global batch change with the world size while the lr did not (or the reverse)?"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections import Counter
from typing import Any

from dldoctor.api import Check, Judgement, Key, Severity, Stage, WatchedLoop

# The run at world size 1 (a process of its own). NOTE: dldoctor.distributed is not dldoctor.api: until
# dldoctor.api.measure re-exports this module, this import is the one tests/test_layering.py flags.
from dldoctor.api.measure import world_of_one

#: A ratio at least this (or at most its inverse) is a change of the global batch or of the lr.
CHANGED = 1.5
#: A ratio within this of 1 is no change.
SAME = 0.10
#: Seconds kept back from the check's time limit when the world-of-one run's timeout is set.
MARGIN_S = 5.0

SCALING_REPORT: Key[dict[str, Any]] = Key("ddp_scaling", "the script's global batch and lr at world size 1 and N")

SOURCE = 'Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (arXiv:1706.02677)'


@dataclasses.dataclass(frozen=True)
class AtWorld:
    """The script at one world size: samples per optimizer step on each rank, and rank 0's lrs."""

    world_size: int
    per_rank: tuple[int, ...]
    """Samples per optimizer step on each rank (the batch times the micro-batches accumulated)."""
    batch: int
    """The batch the model was called on (rank 0)."""
    backwards: int
    """``backward()`` calls per optimizer step (rank 0)."""
    lr: tuple[tuple[float, ...], ...]
    """Rank 0's lrs per parameter group at its first watched steps."""

    @property
    def global_batch(self) -> int:
        return sum(self.per_rank)


def _typical(values: Any) -> int:
    """The most common value (the last batch of an epoch may be smaller), the largest on a tie."""
    counts = Counter(int(v) for v in values if v)
    if not counts:
        return 0
    top = max(counts.values())
    return max(v for v, c in counts.items() if c == top)


def at_world(loop: WatchedLoop) -> AtWorld | None:
    """The distributed run as rank 0 recorded it (None: not distributed, or a rank's record is missing)."""
    ranks = loop.ranks
    if len(ranks) < 2 or any("missing" in r for r in ranks):
        return None
    first = [s for s in loop.steps if s.optimizer == 0]
    backwards = [s.backwards for s in first if s.backwards > 0]
    accumulated = int(statistics.median_low(backwards)) if backwards else 1
    last0 = int(ranks[0].get("per_rank_batch") or 0)
    # Rank 0's batch at most steps (its own record says the last step's, which may end an epoch short).
    samples = getattr(loop.resources, "samples", ()) or ()
    batch0 = _typical(samples) or last0
    per_rank = tuple((batch0 if int(r.get("per_rank_batch") or 0) == last0 else int(r.get("per_rank_batch") or 0))
                     * accumulated for r in ranks)
    if batch0 <= 0 or any(n <= 0 for n in per_rank):
        return None
    lr = tuple(s.lr for s in first[:2]) or tuple(tuple(step) for step in ranks[0].get("lr", ())[:1])
    return AtWorld(len(ranks), per_rank, batch0, accumulated, lr)


def _accumulated(at: AtWorld) -> str:
    return f" ({at.batch} x {at.backwards} accumulated micro-batches)" if at.backwards > 1 else ""


def alone(single: world_of_one.WorldOfOne) -> AtWorld:
    """The world-of-one run as an :class:`AtWorld`."""
    return AtWorld(1, (single.samples_per_step,), single.per_rank_batch, max(single.backwards, 1), single.lr[:2])


def _lr_ratio(at_n: AtWorld, at_1: AtWorld) -> tuple[float, float, float] | None:
    """(lr at world N, lr at world 1, their ratio) of the first parameter group, at the first step where
    both are finite and positive (a warm-up may start at 0); None when no step has one."""
    for step_n, step_1 in zip(at_n.lr, at_1.lr, strict=False):
        if step_n and step_1:
            a, b = step_n[0], step_1[0]
            if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0:
                return a, b, a / b
    return None


def mismatch(k: float, r: float) -> str:
    """Which mismatch the batch growth ``k`` and lr ratio ``r`` show: ``batch`` (the global batch changed,
    the lr did not), ``lr`` (the lr changed, the global batch did not), or "" (both or neither changed).

    A grown batch with an lr moved by more than :data:`SAME` counts as scaled on purpose (linear and
    square-root scaling both are); between :data:`SAME` and :data:`CHANGED` nothing is called."""
    batch_changed = k >= CHANGED or k <= 1 / CHANGED
    lr_same = abs(r - 1) <= SAME
    if batch_changed and lr_same:
        return "batch"
    if abs(k - 1) <= SAME and (r >= CHANGED or r <= 1 / CHANGED):
        return "lr"
    return ""


def judge_scaling_mismatch(loop: WatchedLoop, single: world_of_one.WorldOfOne) -> Judgement | None:
    """The same script at world size N (rank 0's record of every rank) and at world size 1 (``single``)."""
    at_n = at_world(loop)
    if at_n is None or single.per_rank_batch <= 0:
        return None
    at_1 = alone(single)
    lrs = _lr_ratio(at_n, at_1)
    if lrs is None:
        return None
    lr_n, lr_1, r = lrs
    k = at_n.global_batch / at_1.global_batch
    case = mismatch(k, r)
    if not case:
        return None
    n = at_n.world_size
    optimizer = loop.optimizers[0].class_name if loop.optimizers else single.optimizer
    adam = "adam" in optimizer.lower()
    per_rank = (f"{at_n.per_rank[0]}" if len(set(at_n.per_rank)) == 1
                else "/".join(str(p) for p in at_n.per_rank))
    evidence = [
        f"at world size 1 (measured: dldoctor ran the script alone for {single.steps} optimizer steps): "
        f"{at_1.global_batch} samples per step{_accumulated(at_1)}, lr {lr_1:g}",
        f"at world size {n}: {per_rank} samples per step on each rank{_accumulated(at_n)}, a global batch of "
        f"{at_n.global_batch} ({k:.3g} x world size 1's), lr {lr_n:g} ({r:.3g} x world size 1's)",
    ]
    if case == "batch":
        grew = k > 1
        title = (f"The global batch {'grew' if grew else 'shrank'} {k:.3g}x with the world size "
                 f"({at_1.global_batch} -> {at_n.global_batch}), the learning rate did not ({lr_n:g})")
        evidence.append(
            f"the rule (not measured here): {SOURCE}: with k times the batch an epoch takes k times "
            f"{'fewer' if grew else 'more'} steps, and the same lr keeps each step the same size, so the run "
            "trains differently per epoch than the recipe it was tuned as; the linear scaling rule scales the lr "
            "by ~k (with a warm-up) for SGD, ~sqrt(k) for Adam-type optimizers")
        keep = max(at_1.batch // n, 1)
        sqrt_lr, linear_lr = lr_1 * math.sqrt(k), lr_1 * k
        fixes = [
            f"Keep the global batch: per-rank batch = global batch // world_size ({at_1.batch} // {n} = {keep} "
            "per rank), and the lr tuned at world size 1 still fits.",
            (f"Or scale the lr with the global batch: x sqrt({k:.3g}) = {sqrt_lr:.3g} for {optimizer} "
             f"(Adam-type: square-root scaling), or x {k:.3g} = {linear_lr:.3g} (linear), with a warm-up."
             if adam else
             f"Or scale the lr with the global batch: x {k:.3g} = {linear_lr:.3g} (linear scaling rule), with a "
             "warm-up over the first steps."),
            "If the larger batch is intended, tune the lr again at this world size.",
        ]
    else:
        title = (f"The learning rate changed {r:.3g}x with the world size ({lr_1:g} -> {lr_n:g}), the global "
                 f"batch did not ({at_n.global_batch})")
        evidence.append(
            f"the rule (not measured here): {SOURCE}: the lr goes with the global batch; the global batch is "
            f"the one of world size 1, so the lr tuned for it needs no scaling, and x {r:.3g} changes every "
            "step's size for the same data per step")
        fixes = [
            f"Keep the lr tuned at world size 1 ({lr_1:g}): the global batch ({at_1.global_batch}) did not change.",
            f"Or, if the lr was scaled for a larger global batch, keep the per-rank batch of world size 1 "
            f"({at_1.batch} per rank, a global batch of {at_1.batch * n}) so the batch grows with it.",
        ]
    metrics = {"k": round(k, 6), "r": round(r, 6), "world_size": n, "case": case,
               "global_batch_world_1": at_1.global_batch, "global_batch": at_n.global_batch,
               "per_rank_batch_world_1": at_1.batch, "per_rank_batch": at_n.batch,
               "accumulation_world_1": at_1.backwards, "accumulation": at_n.backwards,
               "lr_world_1": lr_1, "lr": lr_n, "optimizer": optimizer}
    return Judgement("ddp-scaling-mismatch", Severity.WARNING, 0.8 if case == "batch" else 0.7, title,
                     tuple(evidence), tuple(fixes), metrics, loop.loader_line or "data", case)


def _target(loop: WatchedLoop) -> tuple[str, list[str], bool] | None:
    """The script as the user named it: (target, its arguments, whether it is ``-m module``)."""
    if not loop.argv:
        return None
    return loop.argv[0], list(loop.argv[1:]), loop.script.startswith("-m ")


class DdpScalingMismatchCheck(Check):
    """Distributed script mode: the global batch and the lr change together with the world size (or neither).

    Runs the script once more on rank 0, alone (a group of one rank, 2 optimizer steps, in a fresh
    process), and compares its samples per step and lr with the distributed run's.
    """

    name = "ddp-scaling-mismatch"
    # A hyper-parameter question (the learning rate for the global batch), judged last: the last rank
    # measures the script alone meanwhile (it is idle while rank 0 runs its checks), so the wait is hidden.
    stage = Stage.TUNE
    order = 8
    requires = ("script",)
    emits = ("ddp-scaling-mismatch",)

    def run(self, ctx):
        loop = ctx.watched
        if len(loop.ranks) < 2:
            return []  # not distributed: nothing to compare, and no run at world size 1
        at_n = at_world(loop)
        target = _target(loop)
        if at_n is None or target is None:
            why = ("a rank's record is missing" if any("missing" in r for r in loop.ranks)
                   else "the samples per step could not be read" if target is not None
                   else "the script's command line is unknown")
            return self._skip(ctx, why)
        if loop.hang is not None:
            return self._skip(ctx, "the ranks hung")
        script, args, module = target
        timeout = min(world_of_one.TIMEOUT_S, ctx.time_left() - MARGIN_S)
        try:
            single = world_of_one.collected(timeout) or world_of_one.run_world_of_one(
                script, args, module, cwd=os.getcwd(), timeout_s=min(timeout, ctx.time_left() - MARGIN_S))
        except world_of_one.WorldOfOneFailed as exc:
            return self._skip(ctx, exc.reason)
        lrs = _lr_ratio(at_n, alone(single))
        ctx.reports[SCALING_REPORT] = {
            "judged": lrs is not None,
            "world_size_1": single.to_dict(), f"world_size_{at_n.world_size}": {
                "per_rank_samples_per_step": list(at_n.per_rank), "batch": at_n.batch,
                "backwards": at_n.backwards, "lr": [list(s) for s in at_n.lr]},
            "k": at_n.global_batch / alone(single).global_batch, "r": lrs[2] if lrs else None,
        }
        if lrs is None:
            return self._skip(ctx, "no positive, finite learning rate at the first steps to compare")
        verdict = judge_scaling_mismatch(loop, single)
        return [self.judged(verdict)] if verdict is not None else []

    def _skip(self, ctx: Any, reason: str) -> list[Any]:
        """Not judged: said in the report (``reports.ddp_scaling``, the watched loop's notes), no finding."""
        if SCALING_REPORT not in ctx.reports:
            ctx.reports[SCALING_REPORT] = {"judged": False}
        ctx.reports[SCALING_REPORT]["reason"] = reason
        ctx.watched.notes.append(f"{self.name} not judged: {reason}")
        return []

