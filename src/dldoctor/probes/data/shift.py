"""How far a held-out split's inputs and labels are from the training split's.

Three measurements per held-out split:

* per feature (and per image channel): the standardised mean difference
  (held-out mean - train mean) / pooled std, and the two-sample Kolmogorov-Smirnov
  statistic with its asymptotic p-value;
* a domain classifier: a logistic regression told to separate training rows from
  held-out rows (balanced samples, on the principal components of both and their
  squares, so a change of spread counts as well as a change of mean), scored by its
  out-of-fold ROC AUC. 0.5: the splits cannot be told apart; 1.0: perfectly apart.
  Its folds keep each tight cluster of rows (a subject: see ``tight_clusters``) in one
  fold, so a split by subject is not told apart by recognising subjects;
* the label distribution: total variation distance between the class frequencies
  and a chi-square test (or, for regression, the targets' mean difference and KS).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from dldoctor.probes.data.models import auc, fit_scaler, logistic_oof, pca_basis
from dldoctor.probes.data.sample import SplitSample
from dldoctor.probes.data.tight_clusters import cluster_folds


@dataclasses.dataclass(frozen=True)
class Shift:
    """Measurements of one held-out split against the training split."""

    split: str
    smd: np.ndarray  # per feature column
    ks: np.ndarray
    ks_p: np.ndarray
    std_ratio: np.ndarray  # held-out std / train std per feature (nan where train is constant)
    channel_smd: np.ndarray  # per image channel (empty when not images)
    domain_auc: float
    domain_auc_se: float
    domain_rows: int  # rows per side used by the domain classifier
    label_tvd: float | None
    label_p: float | None
    train_freq: np.ndarray | None
    held_freq: np.ndarray | None
    target_smd: float | None  # regression targets
    target_ks_p: float | None


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value (Stephens' correction)."""
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / len(a)
    cdf_b = np.searchsorted(b, both, side="right") / len(b)
    stat = float(np.max(np.abs(cdf_a - cdf_b)))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * stat
    p = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return stat, float(min(1.0, max(0.0, p)))


def chi2_sf(x: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty normal approximation)."""
    if dof <= 0:
        return 1.0
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _auc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley and McNeil, Radiology 1982)."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / max(1, n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def auc_null_se(n_pos: int, n_neg: int) -> float:
    """Standard error of the AUC when both groups come from one distribution (Mann-Whitney null)."""
    return math.sqrt((n_pos + n_neg + 1) / (12.0 * max(1, n_pos * n_neg)))


def _label_shift(train: SplitSample, held: SplitSample, classes: int) -> tuple:
    if train.labels is None or held.labels is None or train.label_kind != held.label_kind:
        return None, None, None, None, None, None
    if train.label_kind == "value":
        pooled = math.sqrt((train.labels.var() + held.labels.var()) / 2) or 1.0
        smd = float((held.labels.mean() - train.labels.mean()) / pooled)
        return None, None, None, None, smd, ks_2samp(train.labels, held.labels)[1]
    if not train.labelled.any() or not held.labelled.any():
        return None, None, None, None, None, None
    lt, lh = train.labels[train.labelled], held.labels[held.labelled]
    k = max(classes, int(lt.max()) + 1, int(lh.max()) + 1)
    ct = np.bincount(lt, minlength=k).astype(np.float64)
    ch = np.bincount(lh, minlength=k).astype(np.float64)
    ft, fh = ct / ct.sum(), ch / ch.sum()
    tvd = float(0.5 * np.abs(ft - fh).sum())
    total = ct + ch
    used = total > 0
    expected_t = total[used] * ct.sum() / total.sum()
    expected_h = total[used] * ch.sum() / total.sum()
    stat = float((((ct[used] - expected_t) ** 2) / expected_t).sum()
                 + (((ch[used] - expected_h) ** 2) / expected_h).sum())
    return tvd, chi2_sf(stat, int(used.sum()) - 1), ft, fh, None, None


def measure_shift(train: SplitSample, held: SplitSample, classes: int, domain_rows: int, folds: int,
                  seed: int, ks_rows: int = 5000, ks_features: int = 256) -> Shift:
    """Compare ``held`` with ``train`` feature by feature, with a domain classifier, and by labels."""
    rng = np.random.default_rng(seed)
    xt, xh = train.features, held.features
    mt, mh = xt.mean(0, dtype=np.float64), xh.mean(0, dtype=np.float64)
    st, sh = xt.std(0, dtype=np.float64), xh.std(0, dtype=np.float64)
    pooled = np.sqrt((st ** 2 + sh ** 2) / 2)
    varying = pooled > 1e-12
    # Spreads are floored at a tenth of the typical feature's, so a pixel that is almost
    # always blank does not turn a tiny change into a shift of hundreds of stds.
    floor = 0.1 * float(np.median(pooled[varying])) if varying.any() else 0.0
    smd = np.where(varying, (mh - mt) / np.maximum(pooled, max(floor, 1e-12)), 0.0)
    spread_known = (st > floor) & (sh > floor)
    std_ratio = np.where(spread_known, sh / np.where(spread_known, st, 1.0), np.nan)

    a = xt[rng.choice(len(xt), min(len(xt), ks_rows), replace=False)]
    b = xh[rng.choice(len(xh), min(len(xh), ks_rows), replace=False)]
    ks = np.zeros(xt.shape[1])
    ks_p = np.ones(xt.shape[1])
    # The test runs on the features that differ most in mean or spread (a cap keeps
    # wide inputs cheap); the rest keep statistic 0 and p-value 1.
    spread = np.abs(np.log(np.where(np.isfinite(std_ratio) & (std_ratio > 0), std_ratio, 1.0)))
    tested = np.flatnonzero(varying)
    if len(tested) > ks_features:
        tested = np.unique(np.r_[tested[np.argsort(-np.abs(smd[tested]))[: ks_features // 2]],
                                 tested[np.argsort(-spread[tested])[: ks_features // 2]]])
    for j in tested:
        ks[j], ks_p[j] = ks_2samp(a[:, j], b[:, j])

    channel_of = np.asarray(held.layout.channel_of)
    channel_smd = np.zeros(0)
    if len(channel_of) == xt.shape[1] and (channel_of >= 0).any():
        chans = sorted(set(channel_of[channel_of >= 0].tolist()))
        per_t = np.stack([xt[:, channel_of == c].mean(1, dtype=np.float64) for c in chans], 1)
        per_h = np.stack([xh[:, channel_of == c].mean(1, dtype=np.float64) for c in chans], 1)
        sd = np.sqrt((per_t.var(0) + per_h.var(0)) / 2)
        channel_smd = np.where(sd > 1e-12, (per_h.mean(0) - per_t.mean(0)) / np.where(sd > 1e-12, sd, 1.0), 0.0)

    m = min(len(xt), len(xh), domain_rows)
    domain_auc, se = 0.5, 0.0
    if m >= 2 * folds:
        pick_t = xt[rng.choice(len(xt), m, replace=False)]
        pick_h = xh[rng.choice(len(xh), m, replace=False)]
        both = np.concatenate([pick_t, pick_h]).astype(np.float32)
        scale = fit_scaler(both)
        z = scale(both)
        z = z @ pca_basis(z, min(32, max(1, m // 10)), seed)
        z = z / (z.std(0) + 1e-6)
        is_held = np.r_[np.zeros(m, np.int64), np.ones(m, np.int64)]
        fold = cluster_folds(z, is_held, folds, seed)
        z = np.concatenate([z, z * z - 1.0], 1)
        probs = logistic_oof(z, is_held, 2, folds, seed, l2=1e-2, fold=fold)
        domain_auc = auc(probs[:, 1], is_held == 1)
        se = _auc_se(domain_auc, m, m)
    tvd, label_p, ft, fh, target_smd, target_p = _label_shift(train, held, classes)
    return Shift(held.split, smd, ks, ks_p, std_ratio, channel_smd, float(domain_auc), float(se), m,
                 tvd, label_p, ft, fh, target_smd, target_p)
