"""Tight clusters of training samples, and how often held-out samples fall inside them.

Without the spec's ``groups`` the subject of a sample is unknown, but its trace
often is not: samples of one patient, user or recording share a signature, so they
form a cluster far tighter than the class they belong to. A split by subject puts
each subject's cluster wholly on one side, so held-out samples land *between* the
training clusters; a split by sample puts a share of every cluster on each side, so
held-out samples land *inside* them, as often as training samples themselves do.

The measurement, on standardised features projected on the training split's top
principal components (at most ``max_train_rows`` distinct training rows and
``max_held_rows`` held-out rows, drawn with the run's seed; category-code columns
left out):

1. Clusters, as in HDBSCAN (Campello, Moulavi and Sander 2013): each point's core
   distance is the distance to its ``_CORE_K``-th nearest neighbour, two points are
   "mutually reachable" at the larger of their distance and both core distances (an
   isolated point cannot bridge two clusters), and the minimum spanning tree of that
   distance gives the single-linkage hierarchy. A cluster (at least
   ``min_cluster_size`` points) is born at the level where it forms and dies at the
   level where it merges with another cluster; it is *tight* when it lives long
   (death / birth at least ``persistence``, and at least ``4 ** (1 / d)`` in ``d``
   intrinsic dimensions, where chance alone carves long-lived clusters) and is well
   below class scale (at most ``sub_class_share`` of its majority class: a class that
   forms one cluster is what classes do, not a subject).
2. The rate a random split gives, measured rather than assumed: the training rows
   are halved at random; clusters found on one half are tested with the other half's
   rows (and the other way round). Clusters that stand for real structure catch the
   other half's rows about as often as their own; clusters that chance carved out of
   unstructured data (points along a curve, a sparse tail) are found but catch few
   new rows, so this cross-fitted rate is near 0 for data without subjects.
3. Each held-out split's rows are tested against the same clusters. A row is inside a
   cluster when its mutual-reachability distance to a member is at most the geometric
   middle of the cluster's birth and death levels (it would join the cluster before
   the cluster merges with anything else).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dldoctor.probes.data.models import fit_scaler, pca_basis
from dldoctor.probes.data.sample import SplitSample

#: The k of the core distance (HDBSCAN's ``min_samples``): the distance to the third
#: nearest neighbour is a point's local scale; a pair of near-identical samples alone
#: does not make a dense region (pairs are the near-copy search's business).
_CORE_K = 3

#: Features scaled as the near-copy search scales them (see ``duplicates``).
_STD_FLOOR = 0.1

#: Principal components kept: distances are measured in this many dimensions.
_DIMENSIONS = 32

#: A column with at most this many distinct values among the training rows is a
#: category code (one-hot, ordinal): rows sharing a combination of categories form
#: tight clusters that are a property of the population, not of a subject, so such
#: columns are left out of the feature space.
_CATEGORICAL_VALUES = 10

#: How much denser than its surroundings chance makes a small group of points: a
#: cluster must outlive ``_CHANCE_DENSITY ** (1 / d)`` in ``d`` intrinsic dimensions
#: (distances grow as density ** (-1 / d)). Measured with 4: data along a curve (d = 1)
#: gives tight-looking clusters up to 3-4x persistence, 2-D and 3-D point clouds up to
#: 2-2.5x, 8 dimensions and more at most 1.2x.
_CHANCE_DENSITY = 4.0


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A tight cluster of one half of the training rows (``members``: positions in that half)."""

    members: np.ndarray
    birth: float
    death: float

    @property
    def persistence(self) -> float:
        return self.death / self.birth

    @property
    def reach(self) -> float:
        """A row within this mutual-reachability distance of a member is inside the cluster."""
        return float(np.sqrt(self.birth * self.death))


@dataclasses.dataclass(frozen=True)
class Occupancy:
    """How often one held-out split's rows fall inside a tight training cluster.

    Attributes:
        split: "val" or "test".
        searched: held-out rows tested (rows identical to a training row are the
            near-copy search's, and left out here).
        inside: the share of them inside a tight cluster (mean over the two halves).
        examples: (held-out sample position, training sample positions of the cluster
            it falls in), for the evidence.
    """

    split: str
    searched: int
    inside: float
    examples: tuple[tuple[int, tuple[int, ...]], ...]


@dataclasses.dataclass(frozen=True)
class TightClusters:
    """Tight clusters in the training data and the held-out splits' occupancy of them.

    Attributes:
        rows: distinct training rows used (both halves together).
        dimension: the intrinsic dimension of the training rows (TwoNN).
        persistence_needed: the death / birth ratio a tight cluster needed here (the
            configured floor, higher in few intrinsic dimensions).
        clusters: tight clusters found per half (mean of the two halves).
        cluster_size: median members of a tight cluster.
        persistence: median death / birth ratio of the tight clusters.
        covered: share of a half's rows that belong to a tight cluster.
        random_split_rate: share of one half's rows inside a tight cluster of the
            other half: what a split by sample gives.
        held_out: one per held-out split.
    """

    rows: int
    dimension: float
    persistence_needed: float
    clusters: float
    cluster_size: float
    persistence: float
    covered: float
    random_split_rate: float
    held_out: tuple[Occupancy, ...]


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] (float32; rows of a few thousand, so a full matrix)."""
    d2 = (a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32, copy=False)


def _spanning_tree(weights: np.ndarray) -> list[tuple[int, int, float]]:
    """Prim's minimum spanning tree of a dense symmetric weight matrix: O(n^2) time, O(n) extra memory."""
    n = len(weights)
    if n < 2:
        return []
    best = weights[0].astype(np.float64)
    parent = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    done[0] = True
    best[0] = np.inf
    edges = []
    for _ in range(n - 1):
        j = int(np.argmin(best))
        edges.append((int(parent[j]), j, float(best[j])))
        done[j] = True
        best[j] = np.inf
        closer = (weights[j] < best) & ~done
        best[closer] = weights[j][closer]
        parent[closer] = j
    return edges


def _hierarchy(edges: list[tuple[int, int, float]], n: int, min_size: int) -> list[tuple[list[int], float, float]]:
    """Every cluster of at least ``min_size`` points in the single-linkage hierarchy that merges
    with another such cluster: (members, birth level, death level).

    A cluster absorbing smaller pieces keeps its birth (HDBSCAN's condensed tree: points
    falling off are not a split); two clusters of ``min_size`` merging both die there,
    and their union is born.
    """
    parent = list(range(n))
    size = [1] * n
    birth = [float("nan")] * n
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    out = []

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b, w in sorted(edges, key=lambda e: e[2]):
        ra, rb = find(a), find(b)
        big_a, big_b = size[ra] >= min_size, size[rb] >= min_size
        if big_a and big_b:
            out += [(list(members[ra]), birth[ra], w), (list(members[rb]), birth[rb], w)]
            born = w
        elif big_a or big_b:
            born = birth[ra] if big_a else birth[rb]
        else:
            born = w if size[ra] + size[rb] >= min_size else float("nan")
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        members[ra].extend(members.pop(rb))
        birth[ra] = born
    return out


def _core(distances: np.ndarray, floor: float, core_k: int) -> np.ndarray:
    k = min(core_k, distances.shape[1]) - 1
    return np.maximum(np.partition(distances, k, axis=1)[:, k], floor)


@dataclasses.dataclass(frozen=True)
class _Half:
    positions: np.ndarray  # training sample positions of this half
    z: np.ndarray
    core: np.ndarray
    floor: float
    core_k: int
    clusters: tuple[Cluster, ...]


def _tight(positions: np.ndarray, z: np.ndarray, labels: np.ndarray | None, min_size: int, persistence: float,
           sub_class_share: float, core_k: int = _CORE_K, largest: bool = False) -> _Half:
    """The tight clusters of one half: long-lived, not class-sized, disjoint; chosen most persistent first
    (or, with ``largest``, the largest first: a whole subject rather than its tightest part)."""
    d = _pairwise(z, z)
    np.fill_diagonal(d, np.inf)
    core = _core(d, 0.0, core_k)
    # A floor on the levels: identical rows were removed, but rows a rounding error apart
    # would otherwise make a birth level of 0 and an endless life.
    floor = 1e-3 * float(np.median(core)) if len(core) else 0.0
    if not floor > 0:
        # Most rows coincide with their neighbours in the features kept (token IDs once the
        # categorical columns are out): no density to contrast, no cluster to read.
        return _Half(positions, z, core, floor, core_k, ())
    core = np.maximum(core, floor)
    reach = np.maximum(d, np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(reach, np.inf)
    limit_of_class = {}
    if labels is not None and (labels >= 0).any():
        classes, counts = np.unique(labels[labels >= 0], return_counts=True)
        limit_of_class = {int(c): sub_class_share * int(k) for c, k in zip(classes, counts)}
    candidates = []
    for members, born, died in _hierarchy(_spanning_tree(reach), len(z), min_size):
        if not np.isfinite(born):
            continue
        cluster = Cluster(np.asarray(members, dtype=np.int64), max(born, floor), died)
        if cluster.persistence < persistence:
            continue
        if limit_of_class and labels is not None:
            own = labels[cluster.members]
            own = own[own >= 0]
            limit = limit_of_class[int(np.bincount(own).argmax())] if len(own) else sub_class_share * len(z) / 2
        else:
            limit = sub_class_share * len(z) / 2  # no classes: as if two
        if len(cluster.members) <= limit:
            candidates.append(cluster)
    candidates.sort(key=lambda c: (-len(c.members) if largest else -c.persistence, int(c.members.min())))
    taken = np.zeros(len(z), dtype=bool)
    chosen = []
    for c in candidates:
        if taken[c.members].any():
            continue
        taken[c.members] = True
        chosen.append(c)
    return _Half(positions, z, core, floor, core_k, tuple(chosen))


def _inside(half: _Half, zq: np.ndarray) -> np.ndarray:
    """For each query row, the index of the tight cluster of ``half`` it falls inside, or -1."""
    out = np.full(len(zq), -1, dtype=np.int64)
    if not half.clusters or len(zq) == 0:
        return out
    d = _pairwise(zq, half.z)
    core_q = _core(d, half.floor, half.core_k)
    for i, c in enumerate(half.clusters):
        reach = np.maximum(d[:, c.members], np.maximum(core_q[:, None], half.core[c.members][None, :])).min(1)
        out[(out < 0) & (reach <= c.reach)] = i
    return out


def intrinsic_dimension(z: np.ndarray) -> float:
    """The TwoNN estimate (Facco, d'Errico, Rodriguez and Laio 2017) of the data's intrinsic dimension.

    The ratio of each point's second- to first-nearest-neighbour distance follows a
    Pareto law whose exponent is the dimension, whatever the density: the maximum
    likelihood estimate is n / sum(log(r2 / r1)). Measured on the local scale, which
    is the scale at which chance carves clusters.
    """
    d = _pairwise(z, z)
    np.fill_diagonal(d, np.inf)
    two = np.partition(d, 1, axis=1)[:, :2].astype(np.float64)
    r1, r2 = two.min(1), two.max(1)
    ok = r1 > 0
    logs = np.log(r2[ok] / r1[ok])
    return float(len(logs) / max(logs.sum(), 1e-12)) if len(logs) else float("inf")


def _categorical(x: np.ndarray) -> np.ndarray:
    """Per column, whether it holds at most ``_CATEGORICAL_VALUES`` distinct values."""
    if len(x) == 0:
        return np.ones(x.shape[1], dtype=bool)
    ordered = np.sort(x, axis=0)
    return np.asarray((np.diff(ordered, axis=0) != 0).sum(0) + 1 <= _CATEGORICAL_VALUES, dtype=bool)


def _pick(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def find_tight_clusters(train: SplitSample, held_out: list[SplitSample], *, max_train_rows: int, max_held_rows: int,
                        min_cluster_size: int, persistence: float, sub_class_share: float, examples: int,
                        seed: int) -> TightClusters | None:
    """Tight training clusters and each held-out split's occupancy of them (None: too few rows to halve)."""
    rng = np.random.default_rng(seed)
    _, first = np.unique(train.hashes, return_index=True)  # identical training rows count once
    distinct = np.sort(first)
    rows = distinct[_pick(len(distinct), max_train_rows, rng)]
    if len(rows) < 4 * min_cluster_size:
        return None
    columns = np.flatnonzero(~_categorical(train.features[rows]))
    if len(columns) < 2:
        return None  # category codes only: clusters of combinations are natural
    channel_of = np.asarray(train.layout.channel_of)
    per_column = len(channel_of) == train.features.shape[1]
    scale = fit_scaler(train.features[:, columns], channel_of[columns] if per_column else None, floor=_STD_FLOOR)
    xt = scale(train.features[rows][:, columns])
    basis = pca_basis(xt, _DIMENSIONS, seed)
    zt = (xt @ basis).astype(np.float32)
    labels = train.class_labels[rows] if train.has_classes else None
    half = rng.permutation(len(rows)) < len(rows) // 2
    dimension = intrinsic_dimension(zt[half])
    needed = max(persistence, _CHANCE_DENSITY ** (1.0 / max(dimension, 1e-3)))
    halves = []
    for side in (half, ~half):
        pos = np.flatnonzero(side)
        halves.append(_tight(rows[pos], zt[pos], None if labels is None else labels[pos], min_cluster_size,
                             needed, sub_class_share))
    crossed = [float(np.mean(_inside(h, o.z) >= 0)) for h, o in ((halves[0], halves[1]), (halves[1], halves[0]))]
    known = set(train.hashes.tolist())
    occupancy = []
    for held in held_out:
        fresh = np.flatnonzero(np.asarray([h not in known for h in held.hashes.tolist()], dtype=bool))
        fresh = fresh[_pick(len(fresh), max_held_rows, rng)]
        zq = (scale(held.features[fresh][:, columns]) @ basis).astype(np.float32)
        rates: list[float] = []
        shown: list[tuple[int, tuple[int, ...]]] = []
        for h in halves:
            where = _inside(h, zq)
            rates.append(float(np.mean(where >= 0)) if len(zq) else 0.0)
            if not shown:
                for q in np.flatnonzero(where >= 0)[:examples]:
                    members = h.clusters[int(where[q])].members
                    shown.append((int(fresh[q]), tuple(int(h.positions[p]) for p in members)))
        occupancy.append(Occupancy(held.split, len(fresh), float(np.mean(rates)), tuple(shown)))
    sizes = [len(c.members) for h in halves for c in h.clusters]
    lives = [c.persistence for h in halves for c in h.clusters]
    covered = [sum(len(c.members) for c in h.clusters) / max(1, len(h.z)) for h in halves]
    return TightClusters(rows=len(rows), dimension=dimension, persistence_needed=needed,
                         clusters=float(np.mean([len(h.clusters) for h in halves])),
                         cluster_size=float(np.median(sizes)) if sizes else 0.0,
                         persistence=float(np.median(lives)) if lives else 0.0,
                         covered=float(np.mean(covered)), random_split_rate=float(np.mean(crossed)),
                         held_out=tuple(occupancy))


def cluster_folds(z: np.ndarray, strata: np.ndarray, folds: int, seed: int, *, min_cluster_size: int = 2,
                  persistence: float = 1.2, max_rows: int = 3000) -> np.ndarray:
    """Cross-validation folds that keep each tight cluster of rows inside one fold.

    A model scored out-of-fold on rows whose subject (a tight cluster) also sits in
    its training folds is scored on subjects it has seen: the domain classifier of the
    distribution-shift measurement would then tell two splits apart by recognising
    their subjects, even when the splits are a clean split by subject of one
    population. Clusters are found as in :func:`find_tight_clusters` (at most
    ``max_rows`` rows clustered, the rest joining the cluster they fall inside), down to
    pairs and with the nearest neighbour as the local scale (a subject may have only a
    few rows in the sample; keeping chance pairs of unstructured data together costs
    nothing); rows in no tight cluster get folds stratified by ``strata``, as before.
    """
    from dldoctor.probes.data.models import fold_ids

    rng = np.random.default_rng(seed)
    fold = fold_ids(len(z), folds, seed, strata)
    if len(z) < 4 * min_cluster_size:
        return fold
    chosen = _pick(len(z), max_rows, rng)
    needed = max(persistence, _CHANCE_DENSITY ** (1.0 / max(intrinsic_dimension(z[chosen]), 1e-3)))
    half = _tight(chosen, z[chosen], None, min_cluster_size, needed, 1.0, core_k=1, largest=True)
    where = np.full(len(z), -1, dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(z)), chosen)
    where[rest] = _inside(half, z[rest])
    for i, c in enumerate(half.clusters):
        where[chosen[c.members]] = i  # members by membership: a late-joining member is still the subject's
    for rank, c in enumerate(rng.permutation(len(half.clusters))):
        fold[where == c] = rank % folds
    return fold
