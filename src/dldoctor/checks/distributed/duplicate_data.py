"""Distributed script mode: do the ranks train on the same batches?"""

from __future__ import annotations

from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: Steps compared at least, and the share of them with identical batches on two ranks that reads as
#: duplicated data (distinct shards give identical batches on no step at all).
MIN_STEPS = 3
SAME_SHARE = 0.5


def ranks_with_fingerprints(loop: WatchedLoop) -> list[dict[str, Any]]:
    """The ranks whose record came, with at least one batch fingerprint."""
    return [r for r in loop.ranks if "missing" not in r and any(f is not None for f in r.get("fingerprints", ()))]


def judge_duplicate_data(loop: WatchedLoop) -> Judgement | None:
    """Two ranks whose model saw identical batches (same first samples) at the same steps."""
    ranks = ranks_with_fingerprints(loop)
    if len(ranks) < 2:
        return None
    first = ranks[0]
    worst: tuple[float, int, int, dict[str, Any]] | None = None
    for other in ranks[1:]:
        pairs = [(a, b) for a, b in zip(first["fingerprints"], other["fingerprints"], strict=False)
                 if a is not None and b is not None]
        if len(pairs) < MIN_STEPS:
            continue
        same = sum(a == b for a, b in pairs)
        share = same / len(pairs)
        if worst is None or share > worst[0]:
            worst = (share, same, len(pairs), other)
    if worst is None or worst[0] < SAME_SHARE:
        return None
    share, same, compared, other = worst
    duplicated = sum(1 for r in ranks[1:] if _same_share(first, r) >= SAME_SHARE) + 1
    samplers = ", ".join(f"rank {r['rank']}: {r.get('sampler', {}).get('class') or 'unknown'}" for r in ranks)
    return Judgement(
        "ddp-duplicate-data", Severity.ERROR, min(0.95, 0.6 + 0.35 * share),
        f"{duplicated} of {len(loop.ranks)} ranks trained on the same batches",
        (f"rank {first['rank']} and rank {other['rank']} drew identical batches at {same} of {compared} watched "
         "steps (fingerprints of each step's first samples)",
         f"training sampler per rank: {samplers}"),
        None,
        {"same_steps": same, "compared_steps": compared, "share": share, "ranks_duplicated": duplicated,
         "world_size": len(loop.ranks)},
        loop.loader_line or "data")


def _same_share(a: dict[str, Any], b: dict[str, Any]) -> float:
    pairs = [(x, y) for x, y in zip(a["fingerprints"], b["fingerprints"], strict=False)
             if x is not None and y is not None]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else 0.0


class DdpDuplicateDataCheck(Check):
    """Distributed script mode: the ranks draw different batches.

    Compares, step by step, a fingerprint of the batch each rank's model was called on (a hash of its
    first samples), gathered on rank 0.
    """

    name = "ddp-duplicate-data"
    stage = Stage.RUN
    order = 6
    requires = ("script",)
    emits = ("ddp-duplicate-data",)

    def run(self, ctx):
        verdict = judge_duplicate_data(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
