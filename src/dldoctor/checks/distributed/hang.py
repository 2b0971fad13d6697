"""Distributed script mode: did the ranks hang, each waiting at a different collective?"""

from __future__ import annotations

from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop


def _place(state: dict[str, Any]) -> str:
    collective = state.get("waiting") or state.get("collective") or ""
    line = state.get("line") or "a line outside your files"
    if state.get("ended") and not state.get("waiting"):
        return f"rank {state['rank']} had left its training loop"
    what = ("backward(), where DistributedDataParallel all-reduces the gradients" if collective == "backward"
            else f"torch.distributed.{collective}()" if collective else "no collective")
    return f"rank {state['rank']} waits in {what} at {line}"


def judge_hang(loop: WatchedLoop) -> Judgement | None:
    """The watchdog's verdict (``loop.hang``), as a finding that names each rank's collective and line."""
    verdict = loop.hang
    if not verdict:
        return None
    states = sorted(verdict.get("ranks", ()), key=lambda s: s.get("rank", 0))
    if not states:
        return None
    waiting_s = float(verdict.get("waiting_s", 0.0))
    evidence = [_place(s) for s in states]
    steps = ", ".join(f"rank {r.get('rank')}: {r.get('steps', '?')}" for r in loop.ranks if "missing" not in r)
    evidence.append(f"no rank moved for {waiting_s:.0f} s; optimizer steps taken before: {steps}")
    for state in states:
        stack = state.get("stack") or []
        if stack:
            evidence.append(f"rank {state['rank']}'s stack (innermost last): " + " <- ".join(reversed(stack[-6:])))
    first = next((s for s in states if s.get("line")), states[0])
    location = (first.get("line") or "").split(" (")[0]
    return Judgement(
        "ddp-hang", Severity.ERROR, 0.95,
        "the ranks hang: " + "; ".join(_place(s) for s in states),
        tuple(evidence), None,
        {"world_size": len(states), "waiting_s": waiting_s,
         "ranks_waiting": sum(1 for s in states if s.get("waiting")),
         "ranks_ended": len(verdict.get("ended", ()))},
        location)


class DdpHangCheck(Check):
    """Distributed script mode: no rank waits in a collective that another rank never calls.

    Reads the watchdog's verdict (:mod:`dldoctor.distributed.watchdog`): every rank's Python stack once
    none had moved for ``script.hang_s`` seconds while waiting at different collectives (or ended).
    """

    name = "ddp-hang"
    stage = Stage.RUN
    order = 6
    requires = ("script",)
    emits = ("ddp-hang",)

    def run(self, ctx):
        verdict = judge_hang(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
