"""Read per-epoch curves: where over-fitting starts, a plateau, a diverging loss.

Pure functions over lists of numbers (a metrics log, or dldoctor's own short run).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class EpochReading:
    """What the per-epoch curves show (None where a pattern is absent)."""

    overfit_from: int | None = None
    """Index of the epoch with the lowest validation error, when it rises afterwards while train falls."""
    best_val: float | None = None
    val_rise: float | None = None
    plateau_from: int | None = None
    """Index from which the training curve stopped improving (short of zero)."""
    diverges_at: int | None = None
    """Index where the training loss turns non-finite or climbs far above its minimum."""


def _finite(xs: Sequence[float]) -> list[tuple[int, float]]:
    return [(i, x) for i, x in enumerate(xs) if x is not None and math.isfinite(x)]


def read_epochs(train: Sequence[float] | None, val: Sequence[float] | None, cfg: Mapping[str, float],
                train_loss: Sequence[float] | None = None) -> EpochReading:
    """Analyse train/val curves (errors or losses; lower is better)."""
    overfit_from = best_val = val_rise = plateau_from = diverges_at = None
    if train and val:
        v = _finite(val)
        t = dict(_finite(train))
        if len(v) >= 3:
            best_i, best = min(v, key=lambda kv: kv[1])
            after = [x for i, x in v if i > best_i]
            if after:
                rise = after[-1] - best
                rel = rise / max(abs(best), 1e-12)
                last_i = v[-1][0]
                train_falls = best_i in t and last_i in t and t[last_i] < t[best_i]
                if train_falls and (rise > float(cfg["val_rise_abs"]) or rel > float(cfg["val_rise_rel"])):
                    overfit_from, best_val, val_rise = best_i, best, rise
    curve = train_loss or train
    if curve:
        c = _finite(curve)
        candidates = []
        if len(c) < len(curve):
            candidates.append(next(i for i, x in enumerate(curve) if x is None or not math.isfinite(x)))
        if len(c) >= 3:
            low_i, low = min(c, key=lambda kv: kv[1])
            limit = low + float(cfg["diverge_factor"]) * max(abs(low), 1e-12)
            climbed = [i for i, x in c if i > low_i and x > limit]
            if climbed and (c[-1][1] > limit or len(c) < len(curve)) and max(x for _, x in c) > c[0][1]:
                candidates.append(climbed[0])
        diverges_at = min(candidates) if candidates else None
        window = max(3, int(len(c) * float(cfg["plateau_window"])))
        if diverges_at is None and len(c) >= window + 2:
            tail = [x for _, x in c[-window:]]
            start = c[0][1]
            change = (tail[0] - tail[-1]) / max(abs(start), 1e-12)
            if abs(change) < float(cfg["plateau_rel"]) and tail[-1] > float(cfg["plateau_floor"]) * abs(start):
                plateau_from = c[-window][0]
    return EpochReading(overfit_from, best_val, val_rise, plateau_from, diverges_at)
