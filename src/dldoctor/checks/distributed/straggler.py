"""Distributed script mode: does one rank hold every step?

In a synchronised step the fast ranks wait for the slowest inside the collective (DDP's all-reduce in
``backward()``), so every rank's step takes as long as the slowest one's and step times alone do not
tell who is slow. What a rank does on its own does: the time it waits for its next batch, and its
model's forward pass (no collective inside it). A straggler's own work is longer than the others' by
about the time every rank loses per step.
"""

from __future__ import annotations

import statistics
from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: A rank straggles when its own work per step exceeds the other ranks' by at least this share of the
#: median step (the job runs at least that much slower than with every rank at their pace) ...
SHARE_OF_STEP = 0.25
#: ... by at least this many seconds (two ranks on one busy machine differ by a scheduler time slice,
#: 4-6 ms, without either being slow: under 2 ms on an idle 2-core machine, 13 ms once when 16 processes
#: shared it) ...
MIN_EXCESS_S = 0.02
#: ... and the part that is longer (data wait, or forward) is at least this many times the others'.
RATIO = 3.0


def _component(ranks: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [r.get(key) for r in ranks]
    return [float(v) for v in values if isinstance(v, (int, float))] if all(
        isinstance(v, (int, float)) for v in values) else None


def judge_straggler(loop: WatchedLoop) -> Judgement | None:
    """The rank whose data wait or forward time per step (medians over the watched steps) exceeds the other
    ranks' by :data:`SHARE_OF_STEP` of the step and :data:`MIN_EXCESS_S`, :data:`RATIO` times theirs."""
    ranks = [r for r in loop.ranks if "missing" not in r]
    if len(ranks) < 2 or len(ranks) != len(loop.ranks):
        return None
    steps = _component(ranks, "step_s")
    if steps is None:
        return None
    step = statistics.median(steps)
    for key, what in (("wait_s", "waiting for its next batch"), ("forward_s", "in the model's forward pass")):
        values = _component(ranks, key)
        if values is None:
            continue
        slow = max(range(len(values)), key=values.__getitem__)
        others = statistics.median(v for i, v in enumerate(values) if i != slow)
        excess = values[slow] - others
        if excess < max(SHARE_OF_STEP * step, MIN_EXCESS_S) or values[slow] < RATIO * max(others, 1e-9):
            continue
        record = ranks[slow]
        per_rank = ", ".join(f"rank {r['rank']}: {v * 1e3:.3g} ms" for r, v in zip(ranks, values, strict=True))
        return Judgement(
            "ddp-straggler", Severity.WARNING, 0.8,
            f"rank {record['rank']} spends {excess * 1e3:.3g} ms more per step {what} than the others, and every "
            "rank waits for it",
            (f"median per step {what}: {per_rank}",
             f"median step time: {step * 1e3:.3g} ms on every rank alike (the others wait inside the collective): "
             f"rank {record['rank']}'s extra {excess * 1e3:.3g} ms is {excess / step:.0%} of each step",
             f"over {min(r.get('steps', 0) for r in ranks)} watched steps per rank"),
            None,
            {"rank": record["rank"], "component": key, "excess_s": excess, "step_s": step,
             "share_of_step": excess / step, "per_rank_s": values},
            (loop.loader_line or "data") if key == "wait_s" else "model", case=key)
    return None


class DdpStragglerCheck(Check):
    """Distributed script mode: no rank's own work (data wait, forward pass) sets the pace of every step."""

    name = "ddp-straggler"
    stage = Stage.RUN
    order = 7
    requires = ("script",)
    emits = ("ddp-straggler",)

    def run(self, ctx):
        verdict = judge_straggler(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
