"""Cheap models on flattened data features: standardisation, PCA, k-NN, logistic regression, AUC.

The data checks judge the data without the user's model, with models that cost
seconds on tens of thousands of samples: a multinomial logistic regression fitted by
L-BFGS, and a k-nearest-neighbour search done in blocks (memory O(block x n), never
an n x n matrix). Inputs and outputs are NumPy arrays; torch does the arithmetic.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import numpy as np
import torch

#: Rows of the query block in a nearest-neighbour search: a 2048 x n distance block
#: is at most 1.6 GB for n = 200k in float32, and usually far less.
_BLOCK = 1024


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-feature centring and scaling fitted on one split (the training split)."""

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32, copy=False)


def fit_scaler(x: np.ndarray, channel_of: np.ndarray | None = None, floor: float = 0.0) -> Scaler:
    """Mean and std per feature; a constant feature gets std 1 so it stays 0 after scaling.

    A feature whose std is below 1e-6 of the typical (median) one is treated as
    constant, so float round-off in a constant column does not become a feature of
    unit scale. ``channel_of`` (per feature, -1 for none) pools the statistics of
    each image channel, as image pixels share their channel's scale. ``floor`` raises
    every std to at least that share of the typical one, so features that are almost
    constant (the border pixels of a scan) do not turn tiny differences into large ones.
    """
    mean = x.mean(0, dtype=np.float64)
    std = x.std(0, dtype=np.float64)
    if channel_of is not None and len(channel_of) == x.shape[1]:
        for c in np.unique(channel_of[channel_of >= 0]):
            cols = channel_of == c
            mean[cols] = x[:, cols].mean(dtype=np.float64)
            std[cols] = x[:, cols].std(dtype=np.float64)
    typical = float(np.median(std[std > 0])) if np.any(std > 0) else 1.0
    std = np.where(std > 1e-6 * typical, np.maximum(std, floor * typical), 1.0)
    return Scaler(mean.astype(np.float32), std.astype(np.float32))


def pca_basis(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The top ``k`` principal directions of (already centred) ``x``, as a [d, k] matrix.

    A randomised SVD (Halko, Martinsson and Tropp 2011: a Gaussian sketch, two power
    iterations) on at most 20 000 rows: enough to find the directions that carry the
    variance, at a cost that does not grow with the data.
    """
    d = x.shape[1]
    if d <= k:
        return np.eye(d, dtype=np.float32)
    rng = np.random.default_rng(seed)
    rows = x if len(x) <= 20000 else x[np.sort(rng.choice(len(x), 20000, replace=False))]
    rows = np.asarray(rows, dtype=np.float64)
    sketch = rows @ rng.standard_normal((d, min(d, k + 10)))
    for _ in range(2):
        sketch, _ = np.linalg.qr(sketch)
        sketch = rows @ (rows.T @ sketch)
    q, _ = np.linalg.qr(sketch)
    _, _, vt = np.linalg.svd(q.T @ rows, full_matrices=False)
    return vt[:k].T.astype(np.float32)


def nearest(queries: np.ndarray, points: np.ndarray, k: int = 1,
            exclude_same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k nearest ``points`` of each query: (distances [q, k], indices [q, k]).

    Exact, in query blocks, so memory stays O(block x n) and time O(q x n x d). With
    ``exclude_same`` the queries are the points themselves and each row's own index is
    left out (leave-one-out neighbours).
    """
    k = min(k, len(points) - (1 if exclude_same else 0))
    if k <= 0 or len(queries) == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    p_sq = (p * p).sum(1)
    dists, idx = [], []
    for start in range(0, len(queries), _BLOCK):
        q = torch.from_numpy(np.ascontiguousarray(queries[start:start + _BLOCK], dtype=np.float32))
        d2 = (q * q).sum(1, keepdim=True) - 2.0 * (q @ p.T) + p_sq
        if exclude_same:
            rows = torch.arange(len(q))
            d2[rows, rows + start] = float("inf")
        top = torch.topk(d2, k, dim=1, largest=False)
        dists.append(top.values.clamp_min(0).sqrt())
        idx.append(top.indices)
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()


def fold_ids(n: int, folds: int, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
    """A fold number per row, stratified by label when labels are given."""
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.int64)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    offset = 0
    for rows in groups:
        rows = rng.permutation(rows)
        out[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return out


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run small tensor work on one thread (set back afterwards).

    The cheap models multiply matrices of a few thousand rows; on them, thread
    hand-offs cost more than they save, badly so on a loaded machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lbfgs(fun, w: torch.Tensor, iters: int, history: int = 10, tol: float = 1e-6) -> torch.Tensor:
    """Minimise a smooth convex ``fun(w) -> (loss, grad)`` by L-BFGS with a backtracking line search.

    Small and self-contained (torch.optim.LBFGS would import the compiler stack,
    seconds of start-up, for a problem solved in milliseconds).
    """
    loss, grad = fun(w)
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    for _ in range(iters):
        q = grad.clone()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = (s * q).sum() / (y * s).sum()
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= (s_hist[-1] * y_hist[-1]).sum() / (y_hist[-1] * y_hist[-1]).sum()
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            q += s * (a - (y * q).sum() / (y * s).sum())
        direction = -q
        slope = float((grad * direction).sum())
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_hist.clear()
            y_hist.clear()
            direction, slope = -grad, -float((grad * grad).sum())
        step = 1.0
        while True:
            new_w = w + step * direction
            new_loss, new_grad = fun(new_w)
            if float(new_loss) <= float(loss) + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_vec, y_vec = new_w - w, new_grad - grad
        if float((s_vec * y_vec).sum()) > 1e-12:
            s_hist.append(s_vec)
            y_hist.append(y_vec)
            if len(s_hist) > history:
                s_hist.pop(0)
                y_hist.pop(0)
        converged = abs(float(loss) - float(new_loss)) <= tol * max(1.0, abs(float(loss)))
        w, loss, grad = new_w, new_loss, new_grad
        if converged:
            break
    return w


def fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1e-3, iters: int = 100) -> torch.Tensor:
    """Multinomial logistic regression by L-BFGS: returns the [d + 1, classes] weights (bias last).

    Minimises the mean cross-entropy plus ``l2 * ||W||^2`` (bias not penalised), with
    the gradient written out: X^T (softmax - onehot) / n + 2 l2 W.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    xt = torch.cat([xt, torch.ones(len(xt), 1)], 1)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(y.astype(np.int64)), classes).float()
    penalty = torch.ones(xt.shape[1], 1)
    penalty[-1] = 0.0
    n = len(xt)

    def fun(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(xt @ w, 1)
        loss = -(onehot * logp).sum() / n + l2 * (penalty * w * w).sum()
        return loss, xt.T @ (logp.exp() - onehot) / n + 2 * l2 * penalty * w

    with torch.no_grad(), one_thread():
        return _lbfgs(fun, torch.zeros(xt.shape[1], classes), iters)


def predict_logistic(w: torch.Tensor, x: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    logits = xt @ w[:-1] + w[-1]
    return torch.softmax(logits, 1).numpy()


def logistic_oof(x: np.ndarray, y: np.ndarray, classes: int, folds: int, seed: int,
                 l2: float = 1e-3, iters: int = 100, fold: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold class probabilities [n, classes] of a logistic regression (k-fold; ``fold``: the
    fold of each row, default stratified by label)."""
    if fold is None:
        fold = fold_ids(len(x), folds, seed, y)
    out = np.zeros((len(x), classes), dtype=np.float32)
    for f in range(folds):
        held = fold == f
        if not held.any() or held.all():
            continue
        w = fit_logistic(x[~held], y[~held], classes, l2, iters)
        out[held] = predict_logistic(w, x[held])
    return out


def knn_oof(x: np.ndarray, y: np.ndarray, classes: int, k: int) -> np.ndarray:
    """Leave-one-out class probabilities from the ``k`` nearest other samples.

    Each neighbour votes for its label; a pseudo-count of 1/classes per class keeps
    probabilities off 0 and 1 (a sample's own label is never among its votes).
    """
    _, idx = nearest(x, x, k, exclude_same=True)
    votes = np.zeros((len(x), classes), dtype=np.float32)
    np.add.at(votes, (np.repeat(np.arange(len(x)), idx.shape[1]), y[idx].reshape(-1)), 1.0)
    votes += 1.0 / classes
    return votes / votes.sum(1, keepdims=True)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(p).mean())


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); 0.5 when a class is empty."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties share their mean rank
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
