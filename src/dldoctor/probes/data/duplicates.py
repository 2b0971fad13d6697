"""Exact and near duplicates between the training split and the held-out splits.

Exact duplicates: samples whose input bytes hash alike (every row read).

Near duplicates: a held-out sample whose nearest training sample is at least ten
times closer than its second-nearest one (distance ratio r1 / r2 < ``near_ratio``),
and close in absolute terms (root-mean-square difference per standardised feature at
most ``near_distance``). Features are scaled by the training split's std (per channel
for images, at least a tenth of the typical feature's). A copy sits next to its
original, far closer than anything else; a sample that is merely similar does not.
Natural data also produce small ratios now and then (for points spread along a
curve, r1 / r2 is uniform on [0, 1], for higher intrinsic dimension rarer), so the
share of copies is estimated as the share with ratio below ``near_ratio`` minus the
share between ``near_ratio`` and twice it, which is at least as large for natural
data of any dimension (its CDF rho^m is convex for m >= 1).

The search projects onto the training split's top principal components, takes a
few candidates per query by an exact blocked search (O(queries x training rows), no
all-pairs matrix) and measures their true distances. At most ``near_queries``
held-out rows are searched; the share is estimated from them.

Also: groups of identical training inputs that carry different labels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dldoctor.probes.data.models import fit_scaler, nearest, pca_basis
from dldoctor.probes.data.sample import SplitSample

#: Every feature's scale is at least this share of the typical feature's (see
#: ``fit_scaler``): a near-constant border pixel must not make two copies of one
#: image look far apart.
_STD_FLOOR = 0.1

#: Candidates per query taken from the projected space before measuring true distances.
_CANDIDATES = 8


@dataclasses.dataclass(frozen=True)
class Overlap:
    """Copies of training rows inside one held-out split.

    Positions index the split's sample arrays; ``*_partner`` are positions in the
    training sample. ``near_checked`` held-out rows (not exact copies) were searched.
    """

    split: str
    rows: int
    exact: np.ndarray
    exact_partner: np.ndarray
    near_checked: int
    near: np.ndarray
    near_partner: np.ndarray
    near_excess: float  # estimated share of searched rows that are copies (see the module docstring)
    same_label: float | None  # fraction of copied rows whose label equals their twin's

    @property
    def exact_fraction(self) -> float:
        return len(self.exact) / max(1, self.rows)

    @property
    def near_fraction(self) -> float:
        """Near copies among all rows: the searched rate, applied to the rows not exactly copied."""
        return self.near_excess * (1.0 - self.exact_fraction)

    @property
    def fraction(self) -> float:
        return self.exact_fraction + self.near_fraction


@dataclasses.dataclass(frozen=True)
class Duplicates:
    """Duplicates across and inside splits.

    Attributes:
        max_distance: a near copy's largest RMS difference per standardised feature.
        max_ratio: a near copy's largest ratio of nearest to second-nearest distance.
        overlaps: one per held-out split.
        train_internal: fraction of training rows with an identical input elsewhere
            in the training sample (how often identical inputs recur naturally).
        discrete: the inputs take few distinct values on few features, so identical
            inputs may recur without copying (low-dimensional categorical data).
        conflicts: groups of training positions with identical inputs and different labels.
    """

    max_distance: float
    max_ratio: float
    overlaps: tuple[Overlap, ...]
    train_internal: float
    discrete: bool
    conflicts: tuple[tuple[int, ...], ...]

    @property
    def conflicting_rows(self) -> int:
        return sum(len(g) for g in self.conflicts)


def _groups(hashes: np.ndarray) -> list[np.ndarray]:
    """Positions sharing a hash, for every hash that occurs more than once."""
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_h)) + 1]
    ends = np.r_[starts[1:], len(hashes)]
    return [order[s:e] for s, e in zip(starts, ends) if e - s > 1]


def _is_discrete(features: np.ndarray, max_features: int, max_values: int) -> bool:
    if features.shape[1] > max_features or len(features) == 0:
        return False
    head = features[: min(len(features), 5000)]
    return all(len(np.unique(head[:, j])) <= max_values for j in range(head.shape[1]))


def find_duplicates(train: SplitSample, held_out: list[SplitSample], max_distance: float, max_ratio: float,
                    near_queries: int, seed: int, discrete_features: int = 32,
                    discrete_values: int = 64) -> Duplicates:
    """Exact and near copies of training rows in each held-out split; label conflicts inside train."""
    rng = np.random.default_rng(seed)
    first: dict[int, int] = {}
    for pos, h in enumerate(train.hashes.tolist()):
        first.setdefault(h, pos)
    groups = _groups(train.hashes)
    internal = sum(len(g) for g in groups) / max(1, train.n)
    conflicts: list[tuple[int, ...]] = []
    if train.has_classes:
        labelled = train.labelled
        for g in groups:
            g = g[labelled[g]]
            if len(np.unique(train.class_labels[g])) > 1:
                conflicts.append(tuple(int(p) for p in g))

    scale = fit_scaler(train.features, np.asarray(train.layout.channel_of), floor=_STD_FLOOR)
    xt = scale(train.features)
    d = xt.shape[1]
    basis = pca_basis(xt, 32, seed)
    pt = xt @ basis
    overlaps = []
    for split in held_out:
        partner = np.asarray([first.get(h, -1) for h in split.hashes.tolist()], dtype=np.int64)
        exact = np.flatnonzero(partner >= 0)
        exact = exact[np.argsort(split.rows[exact], kind="stable")]  # in dataset order, for the evidence
        rest = np.flatnonzero(partner < 0)
        if len(rest) > near_queries:
            rest = np.sort(rng.choice(rest, near_queries, replace=False))
        xq = scale(split.features[rest])
        r1, nn, r2 = _two_nearest(xq, xq @ basis, xt, pt)
        rms = r1 / np.sqrt(d)
        ratio = np.where(r2 > 0, r1 / np.maximum(r2, 1e-30), 1.0)
        close = rms <= max_distance
        copy = close & (ratio < max_ratio)
        control = close & (ratio >= max_ratio) & (ratio < 2 * max_ratio)
        excess = max(0.0, (copy.sum() - control.sum()) / max(1, len(rest)))
        same = None
        if split.has_classes and train.has_classes:
            twins = np.r_[partner[exact], nn[copy]]
            mine = np.r_[exact, rest[copy]]
            if len(mine):
                same = float(np.mean(split.class_labels[mine] == train.class_labels[twins]))
        order = np.argsort(ratio[copy], kind="stable")
        overlaps.append(Overlap(split.split, split.n, exact, partner[exact], len(rest), rest[copy][order],
                                nn[copy][order], excess, same))
    return Duplicates(max_distance, max_ratio, tuple(overlaps), internal,
                      _is_discrete(train.features, discrete_features, discrete_values), tuple(conflicts))


def _two_nearest(xq: np.ndarray, pq: np.ndarray, xt: np.ndarray,
                 pt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest and second-nearest training rows of each query: candidates in the projection,
    then exact distances. Returns (r1, index of the nearest, r2)."""
    if len(xq) == 0 or len(xt) < 2:
        return np.zeros(len(xq)), np.zeros(len(xq), np.int64), np.zeros(len(xq))
    k = min(_CANDIDATES, len(pt))
    _, cand = nearest(pq, pt, k)
    dist = np.empty(cand.shape, dtype=np.float64)
    for start in range(0, len(xq), 256):  # bounded memory: 256 x k x d at a time
        diff = xt[cand[start:start + 256]] - xq[start:start + 256, None, :]
        dist[start:start + 256] = np.sqrt((diff.astype(np.float64) ** 2).sum(-1))
    order = np.argsort(dist, axis=1)
    rows = np.arange(len(xq))
    return dist[rows, order[:, 0]], cand[rows, order[:, 0]], dist[rows, order[:, 1]]
