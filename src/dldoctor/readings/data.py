"""How the data checks write numbers, index lists and where a finding points."""

from __future__ import annotations

import math

import numpy as np

from dldoctor.probes.data.measurements import split_size
from dldoctor.probes.data.sample import SplitSample


def number(x: float) -> str:
    """A number as a user would write it."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 1e4:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def index_list(sample: SplitSample, positions: np.ndarray, limit: int) -> str:
    """The dataset indices (or loader positions) of the given sample positions, sorted, at most ``limit``."""
    shown = sorted(int(sample.rows[p]) for p in positions[:limit])
    more = f", ... ({len(positions) - limit} more)" if len(positions) > limit else ""
    return "[" + ", ".join(map(str, shown)) + more + "]"


def sampled_note(sample: SplitSample) -> str:
    if not sample.sampled:
        return ""
    if sample.by_index:
        return f" (a uniform sample of {sample.n} of its {split_size(sample)} rows; counts scaled to the whole split)"
    return f" (the first {sample.n} rows the loader yields, not a uniform sample)"


def location(split: str = "train") -> str:
    return f"data: {split}_loader"
