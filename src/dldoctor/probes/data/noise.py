"""Out-of-sample class probabilities from cheap models, and the label issues they reveal.

Three cheap predictors are fitted on the training sample's standardised features
(reduced to their top principal components): a logistic regression (k-fold), a
k-nearest-neighbour vote (leave-one-out) and their average. The one with the lowest
out-of-sample log-loss is kept: a linear model suits linearly separable data and
token counts, neighbours suit curved class boundaries, and the average is often
better calibrated than either. Confident learning then reads its probabilities
(:mod:`dldoctor.probes.data.label_issues`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dldoctor.probes.data.label_issues import LabelIssues, find_label_issues
from dldoctor.probes.data.models import fit_scaler, knn_oof, log_loss, logistic_oof, pca_basis
from dldoctor.probes.data.sample import SplitSample


@dataclasses.dataclass(frozen=True)
class NoiseReport:
    """What the cheap model says about the training labels.

    Attributes:
        rows: the sample positions used (into the training sample's arrays).
        model: which predictor was kept.
        accuracy: its out-of-sample accuracy against the given labels.
        skill: 1 - its log-loss / the class-prior predictor's log-loss (0: no better
            than guessing by class frequency; 1: certain and right).
        issues: the confident-learning result on ``rows``.
        flag_confidence: median, over flagged samples, of the probability of the
            suggested class rescaled so that chance (1/K) is 0 and certainty is 1.
        probs: the kept out-of-sample probabilities [len(rows), K].
        confident_disagreement: among the quarter of samples the model is surest
            about, the share whose given label is not its prediction. Labels that are
            merely ambiguous (classes that overlap near their boundary) disagree only
            where the model is unsure; wrong labels disagree everywhere.
    """

    rows: np.ndarray
    model: str
    accuracy: float
    skill: float
    issues: LabelIssues
    flag_confidence: float
    probs: np.ndarray
    confident_disagreement: float
    local_confirmation: float


def noise_rows(train: SplitSample, max_rows: int, seed: int) -> np.ndarray:
    """The labelled sample positions the label-noise models use (a seeded sample of at most ``max_rows``)."""
    rows = np.flatnonzero(train.labelled)
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    return rows


def measure_label_noise(train: SplitSample, classes: int, max_rows: int, dims: int, folds: int, neighbours: int,
                        seed: int, use_cleanlab: bool = True,
                        extra: dict[str, np.ndarray] | None = None) -> NoiseReport | None:
    """Confident learning on out-of-sample predictions; None without class labels.

    ``extra`` adds other predictors' out-of-sample probabilities on ``noise_rows``
    (the user's model in the thorough profile); the best by log-loss is kept.
    """
    if not train.has_classes:
        return None
    rows = noise_rows(train, max_rows, seed)
    if len(rows) < 2:
        return None
    y = train.class_labels[rows].astype(np.int64)
    k = max(classes, int(y.max()) + 1)
    x = fit_scaler(train.features[rows])(train.features[rows])
    x = x @ pca_basis(x, dims, seed)
    linear, knn = logistic_oof(x, y, k, folds, seed), knn_oof(x, y, k, neighbours)
    candidates = {"a logistic regression on the flattened inputs": linear,
                  f"a {neighbours}-nearest-neighbour vote on the flattened inputs": knn,
                  "a logistic regression and a nearest-neighbour vote on the flattened inputs, averaged":
                      (linear + knn) / 2}
    for name, probs in (extra or {}).items():
        if probs.shape == (len(y), k):
            candidates[name] = probs
    model, probs = min(candidates.items(), key=lambda item: log_loss(item[1], y))
    prior = np.bincount(y, minlength=k) / len(y)
    prior_loss = log_loss(np.tile(prior, (len(y), 1)), y)
    skill = 1.0 - log_loss(probs, y) / prior_loss if prior_loss > 0 else 0.0
    issues = find_label_issues(y, probs, use_cleanlab)
    flag_conf = 0.0
    if len(issues.flagged):
        p = probs[issues.flagged, issues.suggested]
        flag_conf = float(np.median((p - 1.0 / k) / (1.0 - 1.0 / k)))
    local = knn[issues.flagged]
    confirmed = float(np.mean(local[np.arange(len(local)), y[issues.flagged]] < 1.0 / k)) if len(local) else 0.0
    sure = probs.max(1)
    top = sure >= np.quantile(sure, 0.75)
    disagree = float(np.mean(probs.argmax(1)[top] != y[top]))
    return NoiseReport(rows, model, float(np.mean(probs.argmax(1) == y)), float(skill), issues, flag_conf, probs,
                       disagree, confirmed)
