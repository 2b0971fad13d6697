"""How large a train/validation gap a run's split sizes make ordinary, and whether its training had finished.

Shared by the checks that read dldoctor's short training run (bias-variance, too-little-data):
a gap within the noise of a small validation set is not over-fitting, and a gap measured
while the training loss is still falling is provisional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def gap_standard_error(unit: str, train: float, val: float, n_train: int | None, n_val: int | None) -> float | None:
    """The standard error of the measured gap ``val - train`` that the splits' sizes allow.

    Error rates: the Agresti-Caffo interval for a difference of two proportions (one
    error and one success added to each split). The plain (Wald) error of the observed
    rates is far too small for the few errors a small validation set holds: 0 errors
    give an error of 0, 6 errors in 60 samples 0.039 where the interval's coverage
    needs 0.040-0.045. Relative MSE: with roughly Gaussian residuals, n x MSE / sigma^2
    is chi-square with n degrees of freedom, so an MSE measured on n samples has a
    relative standard error of sqrt(2 / n) (heavier tails only make it larger: this is
    a floor). Any other unit (a raw loss) has no sampling model: None.
    """
    if not n_train or not n_val:
        return None
    if unit in ("error", "1 - accuracy"):
        def spread(rate: float, n: int) -> float:
            adjusted = (rate * n + 1) / (n + 2)
            return adjusted * (1 - adjusted) / (n + 2)
        return math.sqrt(spread(train, n_train) + spread(val, n_val))
    if unit == "relative MSE":
        return math.hypot(train * math.sqrt(2 / n_train), val * math.sqrt(2 / n_val))
    return None


def training_loss_left(losses: Sequence[float], min_fall: float) -> float | None:
    """How much further the training loss would fall, as a share of its last value, when
    it is still falling clearly at the end of the run; else None.

    The last two falls give the pace and how fast it slows: with falls d1 then d2
    (ratio r = d2 / d1), a loss approaching its limit geometrically has d2 r / (1 - r)
    left to fall (unbounded for r >= 1). Clearly: it fell in each of the last two
    epochs (one fall can be the noise of scoring a capped number of batches; two in a
    row are a trend) and what is left is at least ``min_fall`` of the loss.
    """
    finite = [x for x in losses if math.isfinite(x)]
    if len(finite) < 3:
        return None
    before, previous, last = finite[-3:]
    first_fall, last_fall = before - previous, previous - last
    if not (first_fall > 0 and last_fall > 0 and last > 0):
        return None
    ratio = last_fall / first_fall
    left = math.inf if ratio >= 1 else last_fall * ratio / (1 - ratio)
    share = left / last
    return share if share >= min_fall else None
