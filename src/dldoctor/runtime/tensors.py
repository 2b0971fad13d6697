"""Plain descriptions of tensors and batches, so tensors never leave a probe."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """Shape, dtype and device of a tensor, as plain values."""

    shape: tuple[int, ...]
    dtype: str
    device: str

    @property
    def is_floating(self) -> bool:
        return self.dtype in {"float16", "bfloat16", "float32", "float64"} or self.dtype.startswith("float")

    @property
    def is_integer(self) -> bool:
        return self.dtype in {"uint8", "int8", "int16", "int32", "int64", "bool"}

    def __str__(self) -> str:
        return f"[{', '.join(map(str, self.shape))}] {self.dtype}"

    @property
    def shape_str(self) -> str:
        return f"[{', '.join(map(str, self.shape))}]"


def describe(t: torch.Tensor) -> TensorInfo:
    return TensorInfo(tuple(int(s) for s in t.shape), str(t.dtype).replace("torch.", ""), str(t.device))


def iter_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside nested tuples, lists and dicts, in order."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from iter_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_tensors(item)


#: The compressed sparse layouts, whose ``values()`` are what they store.
_COMPRESSED = (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def stored_values(t: torch.Tensor) -> torch.Tensor:
    """A sparse tensor's stored values (coalesced: one per index), a dense one itself. Many operations
    (``ne``, ``max``, ``norm`` with some arguments) are not implemented for sparse layouts; what a sparse
    gradient (``nn.Embedding(sparse=True)``) holds is read from its values."""
    if t.layout == torch.sparse_coo:
        return t.coalesce().values()
    if t.layout in _COMPRESSED:
        return t.values()
    return t


def all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite (integer tensors always are).

    Read from the minimum and maximum, which propagate NaN and are Inf when any value
    is: on CPU one ``aminmax`` costs about a tenth of ``isfinite(t).all()``, and the
    probes ask this of every gradient and activation.
    """
    t = stored_values(t)
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return True
    if t.is_complex():
        return bool(torch.isfinite(t).all())
    lo, hi = torch.aminmax(t.detach().reshape(-1))
    return math.isfinite(float(lo)) and math.isfinite(float(hi))


def l2_norms(tensors: list[torch.Tensor]) -> list[float]:
    """L2 norms of many tensors with one host synchronisation."""
    if not tensors:
        return []
    tensors = [t.detach().float() for t in tensors]
    norms: tuple[torch.Tensor, ...] | list[torch.Tensor]
    try:
        norms = torch._foreach_norm(tensors)  # one fused kernel launch per device and dtype
    except (AttributeError, RuntimeError):
        norms = [t.norm() for t in tensors]
    return torch.stack(list(norms)).tolist()


def describe_all(obj: Any) -> tuple[TensorInfo, ...]:
    return tuple(describe(t) for t in iter_tensors(obj))


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor in a nested batch to ``device`` (a no-op when already there)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device) if obj.device != device else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def batch_size_of(batch: Any) -> int | None:
    for t in iter_tensors(batch):
        if t.dim() > 0:
            return int(t.shape[0])
    return None


def trainable_count(model) -> int:
    """Number of trainable parameters (elements of tensors that require grad; a lazy
    module's parameters count once a forward pass has materialised them)."""
    from torch.nn.parameter import is_lazy

    return sum(p.numel() for p in model.parameters() if p.requires_grad and not is_lazy(p))
