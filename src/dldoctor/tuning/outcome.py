"""A finished search as a plain report: the trials, the best configuration, and how sure we are.

Two honesty rules:

- **The gain over the defaults carries its uncertainty.** The best of N trials is an
  optimistic estimate of its own score (it won partly by luck), so the best and the
  default configurations are trained again on fresh seeds; the gain is the
  difference of their means, and its standard error adds the spread over seeds and
  the sampling error of a finite validation set (binomial, for accuracy). A gain
  below ``z`` standard errors is reported as no significant gain.
- **The top trials' spread says how sharply the best is defined**: when the top few
  lie within the validation set's sampling error of each other, any of them will do.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

ACCURACY = "1 - accuracy"


def metric_name(unit: str) -> str:
    """What the report shows for an error unit."""
    return {ACCURACY: "val accuracy", "relative MSE": "val relative MSE"}.get(unit, "val loss")


def shown(unit: str, error: float | None) -> float | None:
    """An error as the report shows it (accuracy for classification)."""
    if error is None:
        return None
    return 1.0 - error if unit == ACCURACY else error


def binomial_se(error: float, samples: int) -> float:
    """Standard error of an error rate measured on ``samples`` independent samples."""
    if samples <= 0 or not 0.0 <= error <= 1.0:
        return 0.0
    return math.sqrt(error * (1.0 - error) / samples)


@dataclasses.dataclass(frozen=True)
class Gain:
    """Best versus default configuration, re-trained on ``seeds`` fresh seeds.

    ``gain`` is in error units (positive: the best is better); for accuracy it is
    the gain in accuracy.
    """

    default_errors: tuple[float, ...]
    best_errors: tuple[float, ...]
    gain: float
    se: float
    z: float
    significant: bool
    seeds: tuple[int, ...]


def compare(default_errors: Sequence[float], best_errors: Sequence[float], unit: str, samples: int, z: float,
            seeds: Sequence[int]) -> Gain:
    """The gain of the best configuration over the defaults, with its standard error."""
    d, b = list(default_errors), list(best_errors)
    gain = statistics.fmean(d) - statistics.fmean(b)
    var = sum(statistics.variance(x) / len(x) for x in (d, b) if len(x) >= 2)
    if unit == ACCURACY:
        var += sum(binomial_se(statistics.fmean(x), samples) ** 2 for x in (d, b))
    se = math.sqrt(var)
    finite = math.isfinite(gain)
    return Gain(tuple(d), tuple(b), gain if finite else float("nan"), se, z,
                bool(finite and gain > z * se and gain > 0), tuple(seeds))


@dataclasses.dataclass(frozen=True)
class TrialRow:
    number: int
    round: int
    state: str
    params: Mapping[str, Any]
    error: float | None
    epochs: int | None
    seconds: float | None
    note: str = ""
    worker: str = ""


@dataclasses.dataclass(frozen=True)
class TuneOutcome:
    """Everything the tuning report shows; plain data (``to_dict`` for JSON)."""

    method: str
    study: str
    storage: str
    unit: str
    params: tuple[Mapping[str, Any], ...]
    trials: tuple[TrialRow, ...]
    best: Mapping[str, Any] | None
    baseline: Mapping[str, Any] | None
    top: Mapping[str, Any] | None
    gain: Gain | None
    importances: Mapping[str, float] | None
    notes: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        return metric_name(self.unit)

    def shown(self, error: float | None) -> float | None:
        return shown(self.unit, error)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["metric"] = self.metric
        out["trials"] = [dict(dataclasses.asdict(t), score=self.shown(t.error)) for t in self.trials]
        for key in ("best", "baseline"):
            if out[key] is not None:
                out[key]["score"] = self.shown(out[key].get("error"))
        return _finite(out)


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def top_spread(errors: Sequence[float], samples: int, unit: str, count: int) -> dict[str, Any] | None:
    """How far apart the best ``count`` trials lie, against the validation set's sampling error."""
    best = sorted(e for e in errors if math.isfinite(e))[:count]
    if len(best) < 2:
        return None
    se = binomial_se(best[0], samples) if unit == ACCURACY else None
    spread = best[-1] - best[0]
    return {"count": len(best), "best": best[0], "worst": best[-1], "spread": spread, "noise_se": se,
            "within_noise": bool(se is not None and spread <= 2 * se)}


def importances(study) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances, or None and why."""
    from optuna.importance import get_param_importances

    try:
        return {k: float(v) for k, v in get_param_importances(study).items()}, ""
    except Exception as exc:  # too few trials, a single value per parameter, a missing extra
        return None, f"parameter importances not available: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
