"""Distributed script mode: does every epoch repeat the same sample order?"""

from __future__ import annotations

from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: Steps of the next epoch compared with the first epoch's at least, and the share of identical
#: batches that reads as the same order (a reshuffled epoch repeats almost none).
MIN_STEPS = 3
SAME_SHARE = 0.8


def repeated_order(record: dict[str, Any]) -> tuple[int, int] | None:
    """(identical, compared) batches between the first epoch and the second, at the same positions, on one
    rank; None when the second epoch's start was not watched or too few of its steps were."""
    starts = record.get("epoch_starts") or []
    prints = record.get("fingerprints") or []
    if not starts:
        return None
    start = int(starts[0])
    count = min(start, len(prints) - start, (int(starts[1]) - start) if len(starts) > 1 else len(prints))
    pairs = [(prints[i], prints[start + i]) for i in range(max(count, 0))
             if prints[i] is not None and prints[start + i] is not None]
    if len(pairs) < MIN_STEPS:
        return None
    return sum(a == b for a, b in pairs), len(pairs)


def judge_same_order(loop: WatchedLoop) -> Judgement | None:
    """A shuffling training sampler whose second epoch repeats the first one's batches."""
    ranks = [r for r in loop.ranks if "missing" not in r]
    if len(ranks) < 2:
        return None
    repeating = []
    for record in ranks:
        sampler = record.get("sampler") or {}
        if not sampler.get("shuffle"):
            continue  # an unshuffled loader repeats its order on purpose
        counted = repeated_order(record)
        if counted is not None and counted[0] / counted[1] >= SAME_SHARE:
            repeating.append((record, counted))
    if not repeating:
        return None
    record, (same, compared) = repeating[0]
    sampler = record.get("sampler") or {}
    epochs = [e for e in sampler.get("epochs", []) if e is not None]
    evidence = [f"rank {record['rank']}: the first {compared} batches of epoch 2 are those of epoch 1, in the same "
                f"order ({same} of {compared} identical)",
                f"{len(repeating)} of {len(loop.ranks)} ranks repeat their order"]
    if sampler.get("distributed") and epochs:
        moved = len(set(epochs)) > 1
        evidence.append(f"the {sampler.get('class')}'s epoch counter at each epoch start: {epochs}"
                        + ("" if moved else " (set_epoch was never called)"))
    return Judgement(
        "ddp-same-order", Severity.WARNING, 0.85 if sampler.get("distributed") else 0.7, "",
        tuple(evidence), None,
        {"same_steps": same, "compared_steps": compared, "ranks_repeating": len(repeating),
         "sampler_epochs": epochs},
        loop.loader_line or "data")


class DdpSameOrderCheck(Check):
    """Distributed script mode: a shuffling sampler reshuffles between epochs (``set_epoch`` called).

    Compares, on each rank, the fingerprints of the first batches of the second epoch with those of the
    first epoch at the same positions, for training samplers that shuffle.
    """

    name = "ddp-same-order"
    stage = Stage.RUN
    order = 7
    requires = ("script",)
    emits = ("ddp-same-order",)

    def run(self, ctx):
        verdict = judge_same_order(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
