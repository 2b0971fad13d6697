"""Distributed script mode: do the ranks hold the same weights?"""

from __future__ import annotations

from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: Two checksums of one tensor count as equal within this relative difference. Replicas in step hold
#: bitwise-equal weights (the same broadcast initial weights, the same reduced gradient, the same
#: update), so their float64 sums (of absolute values) are equal to the last bit; float32 weights that
#: differ anywhere move a sum by far more than 1e-9 of its size.
RELATIVE = 1e-9


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > RELATIVE * max(1.0, abs(a), abs(b))


def _steps(rank: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(k): v for k, v in (rank.get("checksums") or {}).items()}


def judge_replicas_diverged(loop: WatchedLoop) -> Judgement | None:
    """Two ranks whose parameters differ at a step where both read them (before that step's update).

    Only parameters are compared: buffers such as batch-norm running statistics are updated by each
    rank's own forward pass after DistributedDataParallel broadcast them, so they differ between
    ranks at step time in a healthy run.
    """
    ranks = [r for r in loop.ranks if "missing" not in r and r.get("checksums")]
    if len(ranks) < 2:
        return None
    first = ranks[0]
    mine = _steps(first)
    for other in ranks[1:]:
        theirs = _steps(other)
        shared = sorted(set(mine) & set(theirs))
        differing = [s for s in shared if _differs(mine[s]["params"], theirs[s]["params"])
                     or any(_differs(a, b) for a, b in zip(mine[s].get("per_param", ()),
                                                            theirs[s].get("per_param", ()), strict=False))]
        if not differing:
            continue
        at = differing[0]
        a, b = mine[at], theirs[at]
        tensors = sum(_differs(x, y) for x, y in zip(a.get("per_param", ()), b.get("per_param", ()), strict=False))
        first_tensor = next((i for i, (x, y) in enumerate(zip(a.get("per_param", ()), b.get("per_param", ()),
                                                                strict=False)) if _differs(x, y)), None)
        when = ("before the first step: the ranks started from different weights" if at == 0
                else f"from step {at} on (equal before it): the ranks' updates differ")
        wrapped = ", ".join(f"rank {r['rank']}: " + ("DistributedDataParallel" if r.get("ddp")
                                                        else r.get("wrapper") or "no DDP wrapper")
                            for r in (first, other))
        return Judgement(
            "ddp-replicas-diverged", Severity.ERROR, 0.9 if at == 0 else 0.8,
            f"rank {first['rank']} and rank {other['rank']} hold different weights "
            + ("from the start" if at == 0 else f"from step {at}"),
            (f"parameter checksums (float64 sums of absolute values, before each step's update) differ {when}: "
             f"{a['params']:.9g} on rank {first['rank']}, {b['params']:.9g} on rank {other['rank']}",
             f"{tensors} of {len(a.get('per_param', ()))} parameter tensors compared differ"
             + (f" (the first: parameter #{first_tensor} in the model's order)" if first_tensor is not None else "")
             + f"; steps compared: {', '.join(str(s) for s in shared)}, differing at {len(differing)}",
             f"model per rank: {wrapped}"),
            None,
            {"first_step": at, "steps_compared": len(shared), "steps_differing": len(differing),
             "tensors_differing": tensors, "world_size": len(loop.ranks)},
            "model")
    return None


class DdpReplicasDivergedCheck(Check):
    """Distributed script mode: every rank holds the same weights at each step.

    Compares the float64 sums of absolute values of the watched model's parameters, per tensor and in
    all, that each rank read before the update at steps 0, 1, 2, 4, 8, ... and the last, gathered on rank 0.
    """

    name = "ddp-replicas-diverged"
    stage = Stage.RUN
    order = 7
    requires = ("script",)
    emits = ("ddp-replicas-diverged",)

    def run(self, ctx):
        verdict = judge_replicas_diverged(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
