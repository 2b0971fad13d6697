"""One fixed-length feature vector and one hash per sample, from the input tensors of a batch.

The data checks compare samples with each other, so every sample becomes a vector of
the same length whatever the input is:

* floating-point (and uint8/bool) inputs small enough are flattened;
* larger images ``[C, H, W, ...]`` are average-pooled over their spatial axes, keeping
  the channels, so that ``C x pooled`` fits the budget (a 3 x 224 x 224 image becomes
  3 x 18 x 18); other large tensors are pooled over every axis, and long flat vectors
  are projected by a fixed random Gaussian matrix (distances are kept up to a small
  error, Johnson-Lindenstrauss);
* integer inputs (token ids, category codes) become a bag of tokens: the count of each
  id, folded into a fixed number of buckets (id modulo the bucket count).

The hash is taken on the full input bytes of each sample (before any pooling), so two
samples hash alike only when their inputs are identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: Flat vectors longer than this are pooled rather than projected (the projection
#: matrix would take more than 256 MB at a 1024-wide budget).
_MAX_PROJECTED = 65536


class OddBatchError(ValueError):
    """A batch whose inputs do not match the layout of the first batch."""


@dataclasses.dataclass(frozen=True)
class LeafPlan:
    """How one input tensor becomes features."""

    kind: str  # "flat", "pooled", "projected", "tokens"
    sample_shape: tuple[int, ...]
    dtype: str
    out_shape: tuple[int, ...]  # for pooled: the pooled shape (channels first)
    channels: int  # channel count when the leaf looks like an image (C first, >= 2 spatial axes), else 0

    @property
    def width(self) -> int:
        return int(np.prod(self.out_shape))


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """What the feature columns are, for evidence that names features or channels."""

    plans: tuple[LeafPlan, ...]
    channel_of: tuple[int, ...]  # per feature column: the image channel it belongs to, or -1

    def name(self, column: int) -> str:
        """A readable name for a feature column: ``feature 12``, ``pixel (c0, 3, 4)``, ``token bucket 7``."""
        offset = 0
        for leaf, p in enumerate(self.plans):
            if column < offset + p.width:
                local = column - offset
                prefix = f"input {leaf} " if len(self.plans) > 1 else ""
                if p.kind == "tokens":
                    return f"{prefix}token id {local} (mod {p.width}) count"
                if p.kind == "projected":
                    return f"{prefix}random projection {local}"
                where = [int(i) for i in np.unravel_index(local, p.out_shape)]
                if len(p.out_shape) == 1:
                    return f"{prefix}feature {local}"
                label = "pooled cell" if p.kind == "pooled" else "position"
                if p.channels:
                    return f"{prefix}channel {where[0]} {label} ({', '.join(map(str, where[1:]))})"
                return f"{prefix}{label} ({', '.join(map(str, where))})"
            offset += p.width
        return f"feature {column}"


def _is_tokens(t: torch.Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype not in (torch.uint8, torch.bool)


def plan_leaf(t: torch.Tensor, budget: int, buckets: int) -> LeafPlan:
    shape = tuple(int(s) for s in t.shape[1:])
    dtype = str(t.dtype).replace("torch.", "")
    if _is_tokens(t):
        return LeafPlan("tokens", shape, dtype, (buckets,), 0)
    numel = int(np.prod(shape)) if shape else 1
    channels = shape[0] if len(shape) >= 3 else 0
    if numel <= budget:
        return LeafPlan("flat", shape, dtype, shape or (1,), channels)
    if len(shape) == 1 and numel <= _MAX_PROJECTED:
        return LeafPlan("projected", shape, dtype, (budget,), 0)
    if 3 <= len(shape) <= 4 and shape[0] <= budget // 4:
        spatial = shape[1:]
        side = max(1, int((budget / shape[0]) ** (1.0 / len(spatial))))
        return LeafPlan("pooled", shape, dtype, (shape[0], *(min(s, side) for s in spatial)), channels)
    if len(shape) == 2:
        side = max(1, int(budget ** 0.5))
        return LeafPlan("pooled", shape, dtype, tuple(min(s, side) for s in shape), 0)
    return LeafPlan("pooled", shape, dtype, (budget,), 0)  # anything else: pooled as one long signal


def _pool(x: torch.Tensor, out_shape: tuple[int, ...], channels: int) -> torch.Tensor:
    """Adaptive average pooling of per-sample tensors ``x`` [N, *shape] to ``out_shape`` (flattened)."""
    n = x.shape[0]
    if channels:
        out = out_shape[1:]
        if len(out) == 2:
            return F.adaptive_avg_pool2d(x, (out[0], out[1])).reshape(n, -1)
        return F.adaptive_avg_pool3d(x, (out[0], out[1], out[2])).reshape(n, -1)
    if len(out_shape) == 2 and x.dim() == 3:
        return F.adaptive_avg_pool2d(x.unsqueeze(1), out_shape).reshape(n, -1)
    return F.adaptive_avg_pool1d(x.reshape(n, 1, -1), out_shape[-1]).reshape(n, -1)


class Featurizer:
    """Turns the input tensors of each batch into features, with one plan fixed by the first batch."""

    def __init__(self, budget: int = 1024, buckets: int = 256, seed: int = 0):
        self.budget = budget
        self.buckets = buckets
        self.seed = seed
        self.plans: tuple[LeafPlan, ...] | None = None
        self._projections: dict[int, torch.Tensor] = {}

    def layout(self) -> FeatureLayout:
        plans = self.plans or ()
        channel_of: list[int] = []
        for p in plans:
            if p.channels and p.kind in ("flat", "pooled"):
                per = p.width // p.channels
                channel_of += [c for c in range(p.channels) for _ in range(per)]
            else:
                channel_of += [-1] * p.width
        return FeatureLayout(plans, tuple(channel_of))

    def __call__(self, leaves: Sequence[torch.Tensor]) -> np.ndarray:
        if self.plans is None:
            share = max(16, self.budget // max(1, len(leaves)))
            self.plans = tuple(plan_leaf(t, share, min(self.buckets, share)) for t in leaves)
        if len(leaves) != len(self.plans):
            raise OddBatchError(f"a batch has {len(leaves)} input tensors where the first had {len(self.plans)}")
        return np.concatenate([self._leaf(i, t, p) for i, (t, p) in enumerate(zip(leaves, self.plans))], axis=1)

    def _leaf(self, i: int, t: torch.Tensor, plan: LeafPlan) -> np.ndarray:
        n = int(t.shape[0])
        t = t.detach().cpu()
        if plan.kind == "tokens":
            if not _is_tokens(t):
                raise OddBatchError(f"input {i} holds token ids in the first batch but {t.dtype} values later")
            ids = t.reshape(n, -1).long().remainder(plan.width)
            counts = torch.zeros(n, plan.width, dtype=torch.float32)
            counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float32))
            return counts.numpy()
        x = t.float()
        shape = tuple(int(s) for s in x.shape[1:])
        if plan.kind == "flat":
            if shape != plan.sample_shape:
                if len(shape) != len(plan.sample_shape) or not shape:
                    raise OddBatchError(f"input {i} has per-sample shape {list(shape)} in one batch and "
                                        f"{list(plan.sample_shape)} in the first")
                return _pool(x, plan.out_shape, plan.channels).numpy()  # variable length
            return x.reshape(n, -1).numpy()
        if plan.kind == "pooled":
            if len(shape) != len(plan.sample_shape):
                raise OddBatchError(f"input {i} has per-sample shape {list(shape)} in one batch and "
                                    f"{list(plan.sample_shape)} in the first")
            return _pool(x, plan.out_shape, plan.channels).numpy()
        flat = x.reshape(n, -1)
        proj = self._projections.get(i)
        if proj is None or proj.shape[0] != flat.shape[1]:
            g = torch.Generator().manual_seed(self.seed + i)
            proj = torch.randn(flat.shape[1], plan.width, generator=g) / math.sqrt(plan.width)
            self._projections[i] = proj
        return (flat @ proj).numpy()


def row_hashes(leaves: Sequence[torch.Tensor]) -> np.ndarray:
    """A 64-bit hash per sample of the bytes of all its input tensors (floats as float32)."""
    arrays = []
    for t in leaves:
        t = t.detach().cpu()
        if t.is_floating_point():
            t = t.float()
        a = np.ascontiguousarray(t.numpy()).reshape(int(t.shape[0]), -1)
        arrays.append(a.view(np.uint8).reshape(a.shape[0], -1))
    n = arrays[0].shape[0] if arrays else 0
    out = np.empty(n, dtype=np.uint64)
    for r in range(n):
        h = hashlib.blake2b(digest_size=8)
        for a in arrays:
            h.update(a[r].tobytes())
        out[r] = int.from_bytes(h.digest(), "little")
    return out
