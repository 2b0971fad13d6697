"""Coarse-to-fine random search as an Optuna sampler (imports Optuna).

Trials are numbered by the study, so rounds are too: trial ``n`` belongs to round
``n // per_round``. Round 0 samples the whole space; each later round samples
inside ranges shrunk around the best trials finished in earlier rounds:

- numeric parameters (and lists of numbers, by position) take the span of the top
  ``keep`` fraction of trials, padded by half that span, and at least ``min_width``
  of the previous round's width (so a lucky trial cannot collapse the range);
  log ranges shrink in log space;
- other lists keep the choices whose best trial is among the top ones (at
  least two, and any not tried yet).

Inside a round, each parameter's values are stratified (a Latin hypercube: the
range is cut into ``per_round`` strata and every trial gets a different one), which
covers the range more evenly than independent draws. Every draw comes from a
generator seeded by (seed, trial number, parameter), so the same seed gives the
same trials, and any number of workers sharing a study stay consistent: the
ranges of a round are computed from the study's finished trials, whoever ran them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


def _rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _ordinal(dist: CategoricalDistribution) -> bool:
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in dist.choices)


def _numeric(dist: BaseDistribution) -> IntDistribution | FloatDistribution:
    """A range's distribution: the only other kind than a list that search spaces make."""
    if not isinstance(dist, (IntDistribution, FloatDistribution)):
        raise TypeError(f"unsupported distribution {type(dist).__name__}")
    return dist


def to_unit(dist: BaseDistribution, value: Any) -> float:
    """A parameter value on the axis the search shrinks along (log for log ranges, position for lists)."""
    if isinstance(dist, CategoricalDistribution):
        return float(dist.choices.index(value))
    return math.log(value) if _numeric(dist).log else float(value)


def full_range(dist: BaseDistribution) -> tuple[float, float]:
    """The whole axis: a list's positions span [0, len); an integer range [low, high + 1)."""
    if isinstance(dist, CategoricalDistribution):
        return 0.0, float(len(dist.choices))
    if isinstance(dist, IntDistribution):
        return (math.log(dist.low), math.log(dist.high + 1)) if dist.log else (float(dist.low), float(dist.high + 1))
    dist = _numeric(dist)
    return (math.log(dist.low), math.log(dist.high)) if dist.log else (float(dist.low), float(dist.high))


def from_unit(dist: BaseDistribution, u: float) -> Any:
    """The parameter value at axis position ``u`` (inverse of :func:`to_unit`, with rounding)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(len(dist.choices) - 1, max(0, int(math.floor(u))))]
    dist = _numeric(dist)
    value = math.exp(u) if dist.log else u
    if isinstance(dist, IntDistribution):
        return int(min(dist.high, max(dist.low, math.floor(value))))
    return float(min(dist.high, max(dist.low, value)))


def cell_end(dist: BaseDistribution, value: Any) -> float:
    """Where a value's cell ends on the axis: a list position p covers [p, p + 1), an integer v [v, v + 1)."""
    if isinstance(dist, CategoricalDistribution):
        return to_unit(dist, value) + 1.0
    if isinstance(dist, IntDistribution):
        return math.log(value + 1) if dist.log else float(value + 1)
    return to_unit(dist, value)


def shrink(starts: Sequence[float], ends: Sequence[float], previous: tuple[float, float],
           whole: tuple[float, float], pad: float, min_width: float) -> tuple[float, float]:
    """The next round's range on one axis from the top trials' cells ``[starts, ends)``.

    Their span, padded by ``pad`` x itself each side and cut to the whole axis; then
    widened (about its centre, inside the axis) to at least ``min_width`` x the
    previous round's width.
    """
    lo, hi = min(starts), max(ends)
    span = hi - lo
    lo, hi = max(whole[0], lo - pad * span), min(whole[1], hi + pad * span)
    need = min_width * (previous[1] - previous[0])
    if hi - lo < need:
        centre = (lo + hi) / 2
        lo, hi = centre - need / 2, centre + need / 2
        if lo < whole[0]:
            lo, hi = whole[0], whole[0] + need
        if hi > whole[1]:
            lo, hi = whole[1] - need, whole[1]
    return lo, hi


class CoarseToFineSampler(optuna.samplers.BaseSampler):
    """See the module docstring.

    Args:
        per_round: trials per round.
        keep / min_keep: the fraction of finished trials (and the fewest) that the
            next round's ranges are drawn around.
        pad / min_width: how far around them, see :func:`shrink`.
        offset: fixed trials that open the study (enqueued, not sampled); rounds
            count from after them.
        focus: for round 0, a narrower value range per parameter (the range test's
            descent for the learning rate) where ``focus_share`` of the round's
            trials are drawn; the others still cover the whole range, so a wrong
            focus costs some trials, not the optimum.
    """

    def __init__(self, per_round: int, keep: float = 0.25, min_keep: int = 2, pad: float = 0.5,
                 min_width: float = 0.25, seed: int = 0, offset: int = 0,
                 focus: Mapping[str, tuple[float, float]] | None = None, focus_share: float = 0.5):
        self.per_round = max(1, int(per_round))
        self.keep = keep
        self.min_keep = min_keep
        self.pad = pad
        self.min_width = min_width
        self.seed = seed
        self.offset = max(0, int(offset))
        self.focus = dict(focus or {})
        self.n_focus = min(self.per_round - 1, max(1, round(self.per_round * focus_share))) if self.focus else 0

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def round_of(self, number: int) -> int:
        return max(0, number - self.offset) // self.per_round

    def round_start(self, round_index: int) -> int:
        return self.offset + round_index * self.per_round

    def _ranked(self, study, before: int) -> list[FrozenTrial]:
        """Sampled trials finished and numbered below ``before``, best first.

        The opening trials are left out: a fixed guess (the user's defaults) that
        happens to be decent would pull every later round towards itself.
        """
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if self.offset <= t.number < before and t.value is not None and not math.isnan(t.value)]
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        return sorted(done, key=lambda t: (sign * t.value, t.number))

    def _top(self, study, before: int) -> list[FrozenTrial]:
        done = self._ranked(study, before)
        if len(done) < self.min_keep:
            return []
        return done[: max(self.min_keep, math.ceil(self.keep * len(done)))]

    def _kept_choices(self, study, name: str, dist: CategoricalDistribution, before: int) -> list[Any] | None:
        """Named choices whose best trial ranks in the top ``keep`` fraction, and untried ones.

        At least the two best-ranked choices stay: a choice is dropped for good, and
        one bad partner value of another parameter should not be enough to drop it.
        """
        done = self._ranked(study, before)
        if len(done) < self.min_keep:
            return None
        rank: dict[Any, int] = {}
        for i, t in enumerate(done):
            rank.setdefault(t.params.get(name), i)
        kept = [c for c in dist.choices if c in rank and rank[c] < max(1, math.ceil(self.keep * len(done)))]
        if len(kept) < 2:
            kept = sorted((c for c in dist.choices if c in rank), key=lambda c: rank[c])[:2]
        untried = [c for c in dist.choices if c not in rank]
        return kept + untried

    def bounds(self, study, name: str, dist: BaseDistribution, round_index: int) -> tuple[Any, tuple[float, float]]:
        """(allowed choices or None, axis range) of ``name`` in round ``round_index``."""
        whole = full_range(dist)
        current = whole
        choices = None
        nominal = isinstance(dist, CategoricalDistribution) and not _ordinal(dist)
        for r in range(1, round_index + 1):
            if nominal and isinstance(dist, CategoricalDistribution):  # (isinstance again: for mypy)
                choices = self._kept_choices(study, name, dist, self.round_start(r)) or choices
                continue
            top = [t for t in self._top(study, self.round_start(r)) if name in t.params]
            if not top:
                continue
            values = [t.params[name] for t in top]
            current = shrink([to_unit(dist, v) for v in values], [cell_end(dist, v) for v in values], current,
                             whole, self.pad, self.min_width)
        return choices, current

    def sample_independent(self, study, trial, param_name, param_distribution):
        round_index = self.round_of(trial.number)
        slot = max(0, trial.number - self.offset) % self.per_round
        choices, (lo, hi) = self.bounds(study, param_name, param_distribution, round_index)
        cells, group = self.per_round, "all"
        if round_index == 0 and param_name in self.focus:
            # Stratify the focused slots and the others separately.
            if slot < self.n_focus:
                lo, hi = (to_unit(param_distribution, v) for v in self.focus[param_name])
                cells, group = self.n_focus, "focus"
            else:
                slot, cells, group = slot - self.n_focus, self.per_round - self.n_focus, "rest"
        strata = _rng(self.seed, "strata", round_index, param_name, group).permutation(cells)
        u = (strata[slot] + _rng(self.seed, "jitter", trial.number, param_name).random()) / cells
        if choices is not None or (isinstance(param_distribution, CategoricalDistribution)
                                   and not _ordinal(param_distribution)):
            options = list(choices if choices is not None else param_distribution.choices)
            return options[min(len(options) - 1, int(u * len(options)))]
        return from_unit(param_distribution, lo + u * (hi - lo))


class GridInOrder(optuna.samplers.GridSampler):
    """Optuna's grid, for ask-and-tell: the worker's loop decides when to stop.

    (The stock sampler calls ``study.stop()`` once the grid is used up, which only
    works inside ``study.optimize``.)
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None
