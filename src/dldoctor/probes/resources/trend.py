"""A robust trend test for a memory series: Theil-Sen slope with Sen's confidence bound.

Memory after each training step is flat once warm-up is over (optimiser state is
created at the first step, allocators cache blocks, lazy buffers fill), with noise
from temporary objects and an occasional jump. A leak adds a steady climb. Two
points (first and last) cannot tell a late warm-up jump from a climb; an ordinary
least-squares slope is pulled by a single outlier. The Theil-Sen estimator (Sen
1968, "Estimates of the regression coefficient based on Kendall's tau", JASA 63)
is the median of all pairwise slopes: a jump moves at most the pairs that straddle
it, and its confidence interval comes from the distribution of Kendall's S under
no trend (variance corrected for ties, which a flat memory series is full of).

The series is also fitted over its second half alone: a leak keeps growing to the
end of the run, while a cache that fills during the first epoch (or a warm-up
longer than the one discarded) levels off.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


@dataclasses.dataclass(frozen=True)
class SlopeFit:
    """Theil-Sen slope of y over x and its two-sided confidence interval (units of y per x)."""

    slope: float
    low: float
    high: float
    points: int


@dataclasses.dataclass(frozen=True)
class Trend:
    """The trend of a series after its warm-up.

    Attributes:
        start / end: the step of the first and of the last point used; the ones
            before ``start`` are warm-up.
        points: points used (after warm-up, before any block averaging).
        whole: the fit over every point after warm-up.
        tail: the fit over the second half of those points.
        first_level / last_level: median of the first and last tenth of the points.
    """

    start: int
    end: int
    points: int
    whole: SlopeFit
    tail: SlopeFit
    first_level: float
    last_level: float

    @property
    def growth(self) -> float:
        """Growth over the window at the fitted slope."""
        return self.whole.slope * max(0, self.end - self.start)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _block_medians(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: medians of consecutive blocks (robust to spikes)."""
    if len(y) <= max_points:
        return x, y
    edges = np.linspace(0, len(y), max_points + 1).astype(int)
    xs = np.array([np.median(x[a:b]) for a, b in itertools.pairwise(edges) if b > a])
    ys = np.array([np.median(y[a:b]) for a, b in itertools.pairwise(edges) if b > a])
    return xs, ys


def theil_sen(x: Sequence[float], y: Sequence[float], confidence: float = 0.99, max_points: int = 400) -> SlopeFit:
    """Median pairwise slope and Sen's confidence interval at ``confidence``.

    The interval is exact in its ranks: with N pairwise slopes sorted and C = z *
    sqrt(Var S), the bounds are the slopes of rank (N - C) / 2 and (N + C) / 2 + 1.
    Var S = [n(n-1)(2n+5) - sum over tied groups t(t-1)(2t+5)] / 18.
    """
    xa, ya = _block_medians(np.asarray(x, dtype=float), np.asarray(y, dtype=float), max_points)
    n = len(ya)
    if n < 2:
        return SlopeFit(0.0, -math.inf, math.inf, n)
    i, j = np.triu_indices(n, 1)
    dx = xa[j] - xa[i]
    keep = dx != 0
    slopes = np.sort((ya[j] - ya[i])[keep] / dx[keep])
    count = len(slopes)
    if count == 0:
        return SlopeFit(0.0, -math.inf, math.inf, n)
    _, ties = np.unique(ya, return_counts=True)
    var_s = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18.0
    c = _z(confidence) * math.sqrt(max(0.0, var_s))
    lower_rank = int(math.floor((count - c) / 2))  # 1-based rank of the lower bound
    upper_rank = int(math.ceil((count + c) / 2)) + 1
    low = float(slopes[lower_rank - 1]) if lower_rank >= 1 else -math.inf
    high = float(slopes[upper_rank - 1]) if upper_rank <= count else math.inf
    return SlopeFit(float(np.median(slopes)), low, high, n)


def trend(series: Sequence[float], warmup_fraction: float = 0.2, warmup_min: int = 5, min_points: int = 20,
          confidence: float = 0.99, max_points: int = 400, steps: Sequence[int] | None = None) -> Trend | None:
    """The trend of ``series`` after a warm-up; None when fewer than ``min_points`` remain.

    ``steps``: the 0-based step of each value (default: one value per step). Warm-up:
    the values before step ``max(warmup_min, warmup_fraction * number of steps)``.
    """
    values = np.asarray(series, dtype=float)
    at = np.arange(len(values), dtype=float) if steps is None else np.asarray(steps, dtype=float)
    if len(values) == 0:
        return None
    first = max(float(warmup_min), math.ceil(warmup_fraction * (at[-1] + 1)))
    keep = at >= first
    if int(keep.sum()) < min_points:
        return None
    steps = at[keep]
    kept = values[keep]
    whole = theil_sen(steps, kept, confidence, max_points)
    half = len(kept) // 2
    tail = theil_sen(steps[half:], kept[half:], confidence, max_points)
    tenth = max(1, len(kept) // 10)
    return Trend(start=int(steps[0]), end=int(steps[-1]), points=len(kept), whole=whole, tail=tail,
                 first_level=float(np.median(kept[:tenth])), last_level=float(np.median(kept[-tenth:])))
