"""Distributed script mode: does each rank step with the average of the ranks' gradients?"""

from __future__ import annotations

import math
from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: The stepped gradients of two ranks count as the same within this share of their size (a reduced
#: gradient is bitwise equal on every rank; float32 rounding of the projections stays far below it).
SAME = 1e-5
#: A rank's stepped gradient is its own local one within this share (nothing was added to it).
OWN = 1e-3
#: Cosine between the stepped gradient and the ranks' average above which the stepped one is a
#: multiple of the average, and the multiple from which the step is larger than an average makes it:
#: x1.5 is the effective learning rate half as large again (summing over 2 ranks doubles it).
PARALLEL = 0.999
SCALED = 1.5


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _minus(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b, strict=True)]


def _readings(ranks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Per probed step, every rank's reading of it (steps every rank read with the same tensors)."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for record in ranks:
        for reading in record.get("gradients") or ():
            by_step.setdefault(int(reading["step"]), []).append(reading)
    out = []
    for step in sorted(by_step):
        readings = by_step[step]
        if len(readings) == len(ranks) and all(r["tensors"] == readings[0]["tensors"] for r in readings):
            out.append(readings)
    return out


def classify(readings: list[dict[str, Any]]) -> tuple[str, float]:
    """``("averaged" | "summed" | "own" | "other", multiple)`` for one step's readings of every rank."""
    local = [r["local"] for r in readings]
    stepped = [r["stepped"] for r in readings]
    size = max(_norm(stepped[0]), 1e-30)
    mean = [sum(values) / len(local) for values in zip(*local, strict=True)]
    if all(_norm(_minus(s, stepped[0])) <= SAME * size for s in stepped[1:]):
        mean_sq = _dot(mean, mean)
        if mean_sq <= 0:
            return "other", math.nan
        multiple = _dot(stepped[0], mean) / mean_sq
        cosine = _dot(stepped[0], mean) / (_norm(stepped[0]) * math.sqrt(mean_sq))
        if cosine < PARALLEL:
            return "other", multiple
        return ("summed" if multiple >= SCALED else "averaged"), multiple
    if all(_norm(_minus(s, own)) <= OWN * max(_norm(own), 1e-30) for s, own in zip(stepped, local, strict=True)):
        return "own", 1.0
    return "other", math.nan


def _compensated(ranks: list[dict[str, Any]], multiple: float) -> bool:
    """The loss given to backward() was divided by the multiple (``loss / world_size``, then summed), one
    backward per step: the sum is then the average of the unscaled losses' gradients, as intended."""
    for record in ranks:
        scale, backwards = record.get("loss_scale"), record.get("backwards") or []
        if not isinstance(scale, (int, float)) or scale <= 0 or any(b > 1 for b in backwards):
            return False
        if abs(scale * multiple - 1) > 0.05:
            return False
    return True


def judge_gradients_not_averaged(loop: WatchedLoop) -> Judgement | None:
    """Every probed step stepped with the ranks' summed gradient (a multiple of their mean), or each rank
    with its own, unreduced one."""
    ranks = [r for r in loop.ranks if "missing" not in r and r.get("gradients")]
    if len(ranks) < 2 or len(ranks) != len(loop.ranks):
        return None
    steps = _readings(ranks)
    if not steps:
        return None
    kinds = [classify(readings) for readings in steps]
    world = len(ranks)
    wrapped = ", ".join(f"rank {r['rank']}: " + ("DistributedDataParallel" if r.get("ddp")
                                                   else r.get("wrapper") or "no DDP wrapper") for r in ranks)
    probed = ", ".join(str(readings[0]["step"]) for readings in steps)
    if all(kind == "summed" for kind, _ in kinds):
        multiple = sorted(m for _, m in kinds)[len(kinds) // 2]
        if _compensated(ranks, multiple):
            return None
        return Judgement(
            "ddp-gradients-not-averaged", Severity.ERROR, 0.9 if abs(multiple - world) < 0.05 * world else 0.8,
            f"the optimizer steps with {multiple:.3g}x the ranks' average gradient"
            + (" (their sum)" if abs(multiple - world) < 0.05 * world else ""),
            (f"at steps {probed}, the gradient every rank's optimizer stepped with is {multiple:.3g} times the "
             f"average of the {world} ranks' local gradients (same direction, cosine > {PARALLEL}), and equal on "
             "every rank: they were reduced and not divided by the world size",
             f"the effective learning rate is {multiple:.3g}x the one set, and grows with the number of ranks",
             f"model per rank: {wrapped}"),
            None,
            {"case": "summed", "multiple": multiple, "world_size": world, "steps": len(steps)},
            loop.step_line or "optimizer", case="summed")
    if all(kind == "own" for kind, _ in kinds):
        return Judgement(
            "ddp-gradients-not-averaged", Severity.ERROR, 0.9,
            "every rank steps with its own gradient: nothing reduces the gradients across ranks",
            (f"at steps {probed}, each rank's optimizer stepped with the gradient of its own backward pass, "
             "and those differ between ranks: no all-reduce ran between backward() and step()",
             "the replicas drift apart from the first update, each trained on its own shard",
             f"model per rank: {wrapped}"),
            None,
            {"case": "not reduced", "world_size": world, "steps": len(steps)},
            loop.step_line or "optimizer", case="not reduced")
    return None


class DdpGradientsNotAveragedCheck(Check):
    """Distributed script mode: the gradient each rank steps with is the ranks' average.

    At steps 1 and 2 each rank projects the local gradients of its backward passes (tensor hooks, before
    DistributedDataParallel's all-reduce) and the gradient at ``optimizer.step()`` on the same random
    directions; rank 0 compares the stepped gradient with the mean of the ranks' local ones.
    """

    name = "ddp-gradients-not-averaged"
    stage = Stage.RUN
    order = 7
    requires = ("script",)
    emits = ("ddp-gradients-not-averaged",)

    def run(self, ctx):
        verdict = judge_gradients_not_averaged(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
