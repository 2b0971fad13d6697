"""Judging a learning-rate range test: a suggestion with a confidence, or "no clear minimum".

Pure functions of the sweep's numbers (no torch), so every branch is testable on
synthetic curves. The reading, in order:

1. Smooth the loss without lag (a centred moving median, at a fine and a coarse
   width): the analysis runs after the sweep, so it need not be causal, and a
   median ignores single-batch spikes.
2. **Descent**: the smoothed loss must fall below its start by a meaningful fraction
   *and* by several noise standard deviations; otherwise there is no descent to read.
3. **Minimum**: after its lowest point the loss must rise again (or the sweep stopped
   on divergence); a curve that is flat or still falling at the top of the range has
   no minimum in it, so no rate is singled out.
4. **Suggestion**: the rate where the smoothed loss has covered half of its total
   drop, read at both smoothing widths. A level crossing is robust to noise, unlike
   the steepest-slope point (a derivative of a noisy curve) that other finders print.
5. **Confidence**: how deep the descent is, and how much the two readings agree (a
   disagreement of a decade cannot support a "10x off" verdict).

The descent region (from where the loss first falls by a tenth of its drop to its
minimum) is reported too: the spec's rate below it, or above the minimum, is the
measured evidence behind ``lr-too-low`` / ``lr-too-high``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CLEAR, WEAK, NONE = "clear", "weak", "none"


@dataclasses.dataclass(frozen=True)
class LrReading:
    """What a range test says.

    Attributes:
        status: "clear" (confident suggestion), "weak" (a suggestion, not confident) or
            "none" (no clear minimum: no rate is suggested).
        suggestion: the suggested learning rate, or None.
        confidence: 0..1.
        descent_low / descent_high: the rates where the loss starts falling and where
            it is lowest (None when there is no descent).
        lr_at_min: the rate of the smoothed minimum.
        floor_low: the rate from which the (coarse) smoothed loss stays within a tenth
            of its drop above the minimum: where the sweep has reached its floor.
        initial_loss / min_loss: smoothed start and lowest loss.
        drop_fraction: (initial - min) / |initial|.
        noise: robust standard deviation of the loss around its smoothed curve.
        spread_decades: how far apart the fine and coarse readings lie (log10 units).
        reasons: why there is no clear minimum, or what lowers the confidence.
    """

    status: str
    suggestion: float | None
    confidence: float
    descent_low: float | None = None
    descent_high: float | None = None
    lr_at_min: float | None = None
    floor_low: float | None = None
    initial_loss: float | None = None
    min_loss: float | None = None
    drop_fraction: float | None = None
    noise: float | None = None
    spread_decades: float | None = None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["reasons"] = list(self.reasons)
        return out

    def summary(self) -> str:
        """One line for a report."""
        if self.status == NONE:
            return "no clear minimum: " + (self.reasons[0] if self.reasons else "the curve does not single out a rate")
        text = (f"suggested learning rate {self.suggestion:.3g} ({self.confidence:.0%} confidence; the loss falls "
                f"between {self.descent_low:.3g} and {self.descent_high:.3g})")
        return text if self.status == CLEAR else text + "; not confident: " + "; ".join(self.reasons)


def moving_median(values: Sequence[float] | np.ndarray, half_width: int) -> np.ndarray:
    """Centred moving median; the window shrinks at the ends."""
    v = np.asarray(values, dtype=float)
    return np.array([np.median(v[max(0, i - half_width): i + half_width + 1]) for i in range(len(v))])


def _crossing(x: np.ndarray, s: np.ndarray, level: float, stop: int) -> float:
    """log10 rate where ``s`` first falls to ``level`` before index ``stop`` (linear interpolation)."""
    for i in range(1, stop + 1):
        if s[i] <= level < s[i - 1]:
            t = (s[i - 1] - level) / (s[i - 1] - s[i])
            return float(x[i - 1] + t * (x[i] - x[i - 1]))
    return float(x[stop])


def _start_index(s: np.ndarray, level: float, stop: int) -> int:
    """First index of the final stretch before ``stop`` where ``s`` stays at or below ``level``."""
    start = stop
    while start > 0 and s[start - 1] <= level:
        start -= 1
    return start


def read_sweep(lrs: Sequence[float], losses: Sequence[float], stopped_by: str, cfg: Mapping[str, Any]) -> LrReading:
    """Read a range test; ``cfg`` is the ``lr_finder`` config section."""
    finite = [(lr, loss) for lr, loss in zip(lrs, losses) if math.isfinite(loss) and lr > 0]
    diverged = stopped_by in ("diverged", "nan") or len(finite) < len(losses)
    if len(finite) < int(cfg["min_points"]):
        return LrReading(NONE, None, 0.0, reasons=(f"the sweep recorded only {len(finite)} finite losses "
                                                   f"(stopped by {stopped_by})",))
    x = np.log10([lr for lr, _ in finite])
    raw = np.array([loss for _, loss in finite])
    fine = moving_median(raw, int(cfg["smooth_fine"]))
    coarse = moving_median(raw, int(cfg["smooth_coarse"]))
    initial = float(np.median(raw[: int(cfg["start_steps"])]))
    i_min = int(np.argmin(fine))
    lowest = float(fine[i_min])
    drop = initial - lowest
    noise = float(1.4826 * np.median(np.abs(raw[: i_min + 1] - fine[: i_min + 1]))) if i_min > 0 else 0.0
    rel = drop / max(abs(initial), 1e-12)
    base = dict(lr_at_min=float(10 ** x[i_min]), initial_loss=initial, min_loss=lowest,
                drop_fraction=rel, noise=noise)
    if rel < float(cfg["min_drop"]) or drop < float(cfg["noise_sds"]) * noise or drop <= 0:
        return LrReading(NONE, None, 0.0, **base, reasons=(
            f"the loss never falls meaningfully below its start: smoothed {initial:.4g} -> lowest {lowest:.4g} "
            f"({rel:.0%} lower; a descent needs {float(cfg['min_drop']):.0%} and {float(cfg['noise_sds']):g} "
            f"noise SDs = {float(cfg['noise_sds']) * noise:.3g})",))
    start = _start_index(coarse, initial - float(cfg["start_fraction"]) * drop, i_min)
    floor = _start_index(coarse, lowest + float(cfg["start_fraction"]) * drop, i_min)
    region = dict(descent_low=float(10 ** x[start]), descent_high=float(10 ** x[i_min]),
                  floor_low=float(10 ** x[floor]))
    rise = float(np.max(fine[i_min:]) - lowest)
    if not diverged and rise < float(cfg["min_rise"]) * drop:
        return LrReading(NONE, None, 0.0, **base, **region, reasons=(
            f"after falling from {initial:.4g} to {lowest:.4g} the loss does not rise again up to the top of the "
            f"sweep (lr {10 ** x[-1]:.3g}; it rose by {rise / drop:.0%} of the drop, a minimum needs "
            f"{float(cfg['min_rise']):.0%}): the learning rate does not limit it anywhere in this range",))
    half = initial - 0.5 * drop
    readings = [_crossing(x, fine, half, i_min)]
    i_min_coarse = int(np.argmin(coarse))
    readings.append(_crossing(x, coarse, initial - 0.5 * (initial - float(coarse[i_min_coarse])), i_min_coarse))
    spread = abs(readings[0] - readings[1])
    suggestion = float(10 ** (sum(readings) / 2))
    depth = min(1.0, rel / float(cfg["good_drop"]))
    stability = max(0.0, 1.0 - spread / float(cfg["max_spread_decades"]))
    confidence = round(min(depth, stability), 3)
    reasons = []
    if depth < 1.0:
        reasons.append(f"a shallow descent: the loss falls by only {rel:.0%}")
    if stability < 1.0 and spread > 0.1:
        reasons.append(f"the fine and coarse readings differ by {spread:.1f} decades")
    status = CLEAR if confidence >= float(cfg["confident"]) else WEAK
    return LrReading(status, suggestion, confidence, **base, **region, spread_decades=spread, reasons=tuple(reasons))


def verdict(reading: LrReading, spec_lr: float, away: float) -> str | None:
    """``"too-low"`` / ``"too-high"`` when a confident reading puts ``spec_lr`` more than ``away`` x off.

    Too low: more than ``away`` x below the suggestion *and* below where the loss
    starts to fall (the sweep barely moved the loss at that rate). Too high: more than
    ``away`` x above the suggestion *and* beyond the minimum (the loss was rising there).
    """
    if reading.status != CLEAR or reading.suggestion is None or not spec_lr > 0:
        return None
    if spec_lr * away < reading.suggestion and reading.descent_low is not None and spec_lr * away < reading.descent_low:
        return "too-low"
    if spec_lr > away * reading.suggestion and reading.lr_at_min is not None and spec_lr > reading.lr_at_min:
        return "too-high"
    return None
