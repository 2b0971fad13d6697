"""Confident learning: which given labels disagree confidently with out-of-sample predictions.

Follows Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels" (JAIR 2021). Each class j gets a threshold t_j, the mean predicted
probability of j over the samples labelled j (the model's self-confidence on that
class). A sample labelled i counts as "really j" when p_j >= t_j (the largest such
p_j when several pass); the counts form the confident joint C[i, j]. Its rows are
rescaled to the given label counts, and the off-diagonal mass estimates how many
labels are wrong. The samples flagged are the off-diagonal ones, worst (lowest
probability of the given label) first.

When cleanlab is installed (``pip install dldoctor[data]``), its maintained
implementation (``cleanlab.filter.find_label_issues``, prune by noise rate) flags
the samples instead; the noise estimate and the ranking are the same either way.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class LabelIssues:
    """The outcome of confident learning on one split.

    Attributes:
        noise_fraction: estimated fraction of wrong labels (calibrated confident joint).
        flagged: positions (into the arrays given) of samples whose label looks wrong,
            most suspicious first.
        suggested: for each flagged sample, the class the model confidently predicts.
        joint: the calibrated confident joint, rows = given label, columns = likely true
            label, as counts summing to the number of samples.
        method: "cleanlab" or "confident learning (built-in)".
    """

    noise_fraction: float
    flagged: np.ndarray
    suggested: np.ndarray
    joint: np.ndarray
    method: str


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The calibrated confident joint [K, K] (rows: given label; counts sum to n)."""
    k = probs.shape[1]
    given = np.bincount(labels, minlength=k).astype(np.float64)
    thresholds = np.array([probs[labels == j, j].mean() if given[j] else 1.0 for j in range(k)])
    above = probs >= thresholds - 1e-12
    masked = np.where(above, probs, -1.0)
    likely = masked.argmax(1)
    confident = above.any(1)
    raw = np.zeros((k, k), dtype=np.float64)
    np.add.at(raw, (labels[confident], likely[confident]), 1.0)
    row = raw.sum(1, keepdims=True)
    calibrated = np.divide(raw, row, out=np.zeros_like(raw), where=row > 0) * given[:, None]
    return calibrated


def _builtin_flags(labels: np.ndarray, probs: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Prune by noise rate: for each off-diagonal cell (i, j), flag the round(C[i, j])
    samples labelled i with the largest margin p_j - p_i."""
    flagged = np.zeros(len(labels), dtype=bool)
    k = probs.shape[1]
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        for j in range(k):
            count = int(round(joint[i, j]))
            if i == j or count == 0 or len(rows) == 0:
                continue
            margin = probs[rows, j] - probs[rows, i]
            worst = rows[np.argsort(-margin, kind="stable")[:count]]
            flagged[worst[probs[worst, j] > probs[worst, i]]] = True
    return flagged


def _cleanlab_flags(labels: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None
    return np.asarray(find_label_issues(labels, probs, filter_by="prune_by_noise_rate"), dtype=bool)


def find_label_issues(labels: np.ndarray, probs: np.ndarray, use_cleanlab: bool = True) -> LabelIssues:
    """Confident learning on out-of-sample ``probs`` [n, K] for integer ``labels`` [n]."""
    labels = labels.astype(np.int64)
    joint = confident_joint(labels, probs)
    n = max(1, len(labels))
    noise = float((joint.sum() - np.trace(joint)) / n)
    flags = _cleanlab_flags(labels, probs) if use_cleanlab else None
    method = "cleanlab" if flags is not None else "confident learning (built-in)"
    if flags is None:
        flags = _builtin_flags(labels, probs, joint)
    flagged = np.flatnonzero(flags)
    flagged = flagged[np.argsort(probs[flagged, labels[flagged]], kind="stable")]
    own = probs.copy()
    own[np.arange(len(labels)), labels] = -1.0
    return LabelIssues(noise_fraction=noise, flagged=flagged, suggested=own[flagged].argmax(1) if len(flagged)
                       else np.zeros(0, np.int64), joint=joint, method=method)
