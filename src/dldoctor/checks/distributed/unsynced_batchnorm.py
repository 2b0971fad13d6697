"""Distributed script mode: do batch-norm layers normalise with a few samples of one rank?"""

from __future__ import annotations

import math
import statistics
from typing import Any

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop

#: A layer used its own batch's statistics when the per-channel mean of its output lies within this many
#: of its scale from its bias (exactly 0 up to float rounding, ~1e-7 here; statistics over every rank's
#: batch leave 0.03-0.15 on the zoo's 4-image slices).
OWN_STATISTICS = 1e-4
#: Per-rank batches below this are small for batch norm: Wu & He ("Group Normalization", ECCV 2018,
#: fig. 1) measured ResNet-50's ImageNet error with batch norm at 23.6% for 32 images per GPU, 23.7% at
#: 16, then 24.8% at 8, 27.3% at 4 and 34.7% at 2.
SMALL_BATCH = 16


def _layers(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The layers this rank measured (the first probed step that measured each)."""
    out: dict[str, dict[str, Any]] = {}
    for reading in record.get("norm_stats") or ():
        for layer in reading.get("layers", ()):
            out.setdefault(layer["layer"], {**layer, "step": reading["step"]})
    return out


def _spread(per_rank: list[dict[str, Any]]) -> float | None:
    """Median over channels of the largest gap between two ranks' batch means, in the layer's input
    standard deviations (the mean of the ranks' variances)."""
    means = [layer.get("mean") or [] for layer in per_rank]
    variances = [layer.get("var") or [] for layer in per_rank]
    channels = min(len(m) for m in means + variances)
    gaps = []
    for c in range(channels):
        sd = math.sqrt(sum(v[c] for v in variances) / len(variances))
        if sd > 0:
            values = [m[c] for m in means]
            gaps.append((max(values) - min(values)) / sd)
    return statistics.median(gaps) if gaps else None


def judge_unsynced_batchnorm(loop: WatchedLoop) -> Judgement | None:
    """Training-mode batch-norm layers that normalised with each rank's own statistics, on per-rank batches
    smaller than :data:`SMALL_BATCH`."""
    ranks = [r for r in loop.ranks if "missing" not in r and r.get("norm_stats")]
    if len(ranks) < 2:
        return None
    measured = [_layers(r) for r in ranks]
    names = [n for n in measured[0] if all(n in m for m in measured[1:])]
    own = [n for n in names if all(isinstance(m[n].get("offset"), (int, float)) and m[n]["offset"] <= OWN_STATISTICS
                                   for m in measured)]
    if not own:
        return None
    batch = max(m[n]["batch"] for m in measured for n in own)
    if batch >= SMALL_BATCH:
        return None
    world = len(loop.ranks)
    first = own[0]
    per_rank = [m[first] for m in measured]
    spread = _spread(per_rank)
    classes = sorted({m[n]["class"] for m in measured for n in own})
    offset = max(m[n]["offset"] for m in measured for n in own)
    evidence = [
        f"{len(own)} of {len(names)} batch-norm layers in training mode normalise with each rank's own batch: "
        f"the per-channel mean of their output is their bias to within {offset:.1g} "
        "of their scale on every rank (statistics over all ranks would leave the rank's difference from the "
        "global mean there)",
        f"each normalises {batch} samples per rank, where the global batch is {batch * world} over {world} ranks; "
        f"batch norm's error rises below {SMALL_BATCH} samples (ResNet-50 on ImageNet: 23.7% at 16 per GPU, "
        "24.8% at 8, 27.3% at 4, 34.7% at 2; Wu & He 2018)",
    ]
    if spread is not None:
        evidence.append(f"at step {per_rank[0]['step']} the batch means layer {first!r} normalised with differ "
                        f"between ranks by a median {spread:.2g} input standard deviations per channel")
    evidence.append("layer class: " + ", ".join(classes))
    return Judgement(
        "ddp-unsynced-batchnorm", Severity.WARNING, 0.8 if batch <= SMALL_BATCH // 2 else 0.65,
        f"batch norm normalises {batch} samples per rank, each rank with its own statistics",
        tuple(evidence), None,
        {"per_rank_batch": batch, "global_batch": batch * world, "layers_own_statistics": len(own),
         "layers_measured": len(names), "rank_spread_sd": spread},
        first)


class DdpUnsyncedBatchNormCheck(Check):
    """Distributed script mode: batch norm on small per-rank batches computes its statistics over the ranks.

    At steps 1 and 2 each rank measures, for every batch-norm layer in training mode, whether the layer's
    output mean per channel equals its bias (its own batch's statistics) and the batch it normalised;
    the class of the layer is not read, so a synchronised layer of the user's own passes.
    """

    name = "ddp-unsynced-batchnorm"
    stage = Stage.RUN
    order = 7
    requires = ("script",)
    emits = ("ddp-unsynced-batchnorm",)

    def run(self, ctx):
        verdict = judge_unsynced_batchnorm(ctx.watched)
        return [self.judged(verdict)] if verdict is not None else []
