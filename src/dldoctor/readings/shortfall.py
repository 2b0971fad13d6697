"""Read a short training run's shortfall, and which one-change rerun of it cures it.

Pure functions over the numbers of :class:`~dldoctor.probes.training.short.TrainingRun`
records: the run falls short when it diverges after making progress, when its
validation error does not beat a baseline, or when its training error stays far
above the irreducible error at the end of a run that has stopped improving. A
rerun with one change (``probes.training.variants``) confirms a cause when it ends
clearly better: by more than the measurement's noise, by the baseline margin, and
by a share of the error itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dldoctor.readings.epochs import read_epochs
from dldoctor.readings.generalisation import training_loss_left


def difference_noise(error: float, n: int, error_name: str) -> float:
    """Two standard errors of the difference between two errors measured on ``n`` samples.

    Accuracy: binomial, sqrt(2 p (1 - p) / n). Relative MSE: for roughly Gaussian
    residuals the squared errors have variance 2 sigma^4, so an MSE estimate has a
    relative standard error of sqrt(2 / n), and a difference of two about sqrt(2) times it.
    """
    if not n:
        return 0.0
    if error_name == "1 - accuracy":
        return 2 * math.sqrt(max(error, 1e-3) * max(1 - error, 1e-3) * 2 / n)
    return 2 * math.sqrt(2) * abs(error) * math.sqrt(2 / n)


@dataclasses.dataclass(frozen=True)
class Score:
    """What a run is judged on: validation error when it has one, else training error, else loss."""

    value: float
    samples: int
    name: str
    split: str

    def text(self, value: float | None = None) -> str:
        return f"{self.value if value is None else value:.3f}"


def run_score(run: Any, first: str = "val") -> Score | None:
    """The last epoch's score of a run (``first``'s split first), or None without one."""
    last = run.last
    if last is None:
        return None
    order = (first, "train" if first == "val" else "val")
    for split in order:
        score = getattr(last, split)
        if score is not None and score.error is not None and math.isfinite(score.error):
            return Score(score.error, score.samples, run.error_name, split)
    for split in order:
        score = getattr(last, split)
        if score is not None and math.isfinite(score.loss):
            return Score(score.loss, score.samples, "loss", split)
    return None


def diverged(run: Any, cfg: Mapping[str, Any]) -> int | None:
    """The epoch (1-based) at which the run's training loss turned non-finite or climbed far
    above its minimum (``epochs.diverge_factor``), or None."""
    losses = [e.train.loss if e.train is not None else math.nan for e in run.epochs]
    if run.stopped_by == "nan":
        return len(run.epochs)
    at = read_epochs(losses, None, cfg).diverges_at
    return None if at is None else at + 1


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """How the main run falls short (None/empty where it does not).

    Attributes:
        diverged_at: the epoch where the training loss diverged.
        baseline: the baseline it does not beat ("the mean predictor (1.112)").
        bias: training error above the irreducible error, when that is the shortfall.
    """

    diverged_at: int | None = None
    baseline: str = ""
    bias: float | None = None
    beat_below: float | None = None
    """With a baseline shortfall: the score a run must end below to beat the baseline."""
    fits_training_data: bool = False
    """The run's training error is below its variance (validation minus training error): the
    shortfall is generalisation, not fit."""

    def __bool__(self) -> bool:
        return self.diverged_at is not None or bool(self.baseline) or self.bias is not None

    @property
    def judged_on(self) -> str:
        """The split reruns are compared on: training error when the shortfall is the fit of
        the training data alone, else validation error."""
        return "train" if self.bias is not None and not self.baseline else "val"

    def text(self, score: Score) -> str:
        parts = []
        if self.diverged_at is not None:
            parts.append(f"its training loss diverged in epoch {self.diverged_at}")
        if self.baseline:
            parts.append(f"its {score.split} {score.name} {score.text()} does not beat {self.baseline}")
        if self.bias is not None:
            parts.append(f"its training error stays {self.bias:.3f} above the irreducible error")
        return "; ".join(parts)


def read_shortfall(run: Any, score: Score, baselines: Any | None, irreducible: float | None,
                   config: Mapping[str, Mapping[str, Any]]) -> Shortfall:
    """How ``run`` falls short, judged as the baselines and bias-variance checks judge it
    (the same margins, and the same benefit of the doubt to a run still improving: without
    the spec's irreducible error, validation error or training loss still falling)."""
    margin = float(config["baselines"]["margin"])
    step = float(config["bias_variance"]["min_component"]) / 4
    baseline = ""
    beat_below = None
    if baselines is not None and score.split == "val" and score.name != "loss":
        if baselines.constant is not None and score.value > baselines.constant - margin:
            baseline = f"the {baselines.constant_name} ({baselines.constant:.3f})"
            beat_below = baselines.constant - margin
        elif baselines.linear is not None:
            gap = score.value - baselines.linear
            noise = difference_noise(score.value, score.samples, score.name)
            if gap > max(margin, noise) and not run.may_close(gap, margin / 4):
                baseline = f"a linear model on the flattened inputs ({baselines.linear:.3f})"
                beat_below = baselines.linear + max(margin, noise)
    bias = None
    last = run.last
    fits = False
    if baseline and last is not None and last.train is not None and last.train.error is not None:
        trained = last.train.error - float(irreducible or 0.0)
        fits = trained < score.value - last.train.error
    if last is not None and last.train is not None and last.train.error is not None:
        value = last.train.error - float(irreducible or 0.0)
        noise = difference_noise(last.train.error, last.train.samples, run.error_name) / math.sqrt(2)
        losses = [e.train.loss for e in run.epochs if e.train is not None]
        falling = training_loss_left(losses, float(config["bias_variance"]["train_loss_fall"])) is not None
        unfinished = run.may_close(value, step) if irreducible is not None else (run.still_improving(step)
                                                                                  or falling)
        if value > max(float(config["bias_variance"]["warn_component"]), noise) and not unfinished:
            bias = value
    return Shortfall(diverged(run, config["epochs"]), baseline, bias, beat_below, fits)


@dataclasses.dataclass(frozen=True)
class Rerun:
    """One rerun's outcome against the main run."""

    name: str
    label: str
    diagnosis: str
    score: Score | None
    diverged_at: int | None
    gain: float
    reaches: bool = True
    """It beats the baseline the main run fell short of, or may yet (always, without one)."""

    def text(self, main: Score) -> str:
        if self.score is None:
            return f"{self.label}: no score"
        trail = f" (its loss diverged in epoch {self.diverged_at})" if self.diverged_at is not None else ""
        return f"{self.label}: {main.split} {main.name} {self.score.text()} instead of {main.text()}{trail}"


def cure(main: Score, reruns: Sequence[Rerun], margin: float, min_share: float) -> Rerun | None:
    """The rerun that ends clearly better than the main run, the best if several do.

    Clearly: better by more than two standard errors of the difference, by the
    baseline margin, and by ``min_share`` of the main run's error (a change that moves
    a 0.30 error to 0.28 is not the cause of the 0.30), and without diverging itself.
    With a baseline shortfall, the rerun must also reach the baseline (see :func:`rerun`).
    """
    need = max(margin, difference_noise(main.value, main.samples, main.name), min_share * abs(main.value))
    cured = [r for r in reruns if r.score is not None and r.diverged_at is None and r.gain > need and r.reaches]
    return max(cured, key=lambda r: (r.gain, r.name)) if cured else None


def rerun(name: str, label: str, diagnosis: str, run: Any, main: Score, cfg: Mapping[str, Any],
          falls: Shortfall | None = None, step: float = 0.0) -> Rerun:
    """One rerun against the main run. With a baseline shortfall (``falls.beat_below``) the
    rerun must beat that baseline, or still be improving fast enough to (``may_close``, the
    benefit of the doubt the main run gets): a change that halves the gap to a linear model
    and levels off far behind it is not what holds the model back."""
    score = run_score(run, main.split)
    same = score if score is not None and score.split == main.split and score.name == main.name else None
    gain = main.value - same.value if same is not None else -math.inf
    below = falls.beat_below if falls is not None and main.split == "val" else None
    reaches = (same is None or below is None or same.value < below
               or run.may_close(same.value - below, step))
    return Rerun(name, label, diagnosis, same, diverged(run, cfg), gain, reaches)
