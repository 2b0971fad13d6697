"""Statistics of what the network's first layer actually receives, per feature or channel.

The input is taken where the weights first see it: the first floating tensor given
to the first leaf module that runs. That is the batch's input for a plain model,
and the already-scaled tensor for a model that normalises inside ``forward`` (so
``x / 255`` in the model is accounted for). The forward pass is stopped right there,
so measuring a batch costs almost nothing. When no module receives the input
(a purely functional model), the batch's first floating tensor is used.

Statistics are pooled over the probed batches, per feature: per channel for image-
like tensors ``[N, C, H, W]`` (over N, H, W) and convolution inputs, over the last
axis for tables ``[N, F]`` and sequences ``[N, T, F]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from dldoctor.probes.forward_trace import display_path
from dldoctor.runtime.tensors import iter_tensors

_SELF_NORMALISING = (_BatchNorm, _InstanceNorm, nn.LayerNorm, nn.GroupNorm) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """One feature (or channel) over every sample and position of the probed batches."""

    mean: float
    std: float
    min: float
    max: float
    integer_valued: bool
    binary: bool

    @property
    def rms(self) -> float:
        return math.sqrt(self.mean ** 2 + self.std ** 2)

    @property
    def constant(self) -> bool:
        return self.std <= 1e-7 * max(1.0, abs(self.mean))


@dataclasses.dataclass(frozen=True)
class InputStats:
    """What the first layer receives.

    ``layout`` is ``channels`` (statistics per channel, over samples and positions)
    or ``features`` (per entry of the last axis, over samples and positions).
    ``skipped`` says why nothing was measured (integer token ids, a normalisation
    layer first), else it is empty.
    """

    where: str
    module_type: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    samples: int
    features: tuple[FeatureStats, ...]
    skipped: str = ""


class _Captured(BaseException):
    """Stops the forward once the first leaf module has been given its input.

    A BaseException, so that user code with ``except Exception`` lets it through.
    """


def _first_tensor(obj: Any) -> torch.Tensor | None:
    tensors = [t for t in iter_tensors(obj) if t.numel() > 0]
    return next((t for t in tensors if t.is_floating_point()), tensors[0] if tensors else None)


def capture_first_input(model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], Any]
                        ) -> tuple[torch.Tensor | None, nn.Module | None, str]:
    """The tensor the first leaf module receives, that module and its path."""
    paths: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(module, name)
    seen: dict[str, Any] = {}

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if seen:
            return
        seen["tensor"] = _first_tensor((args, kwargs))
        seen["module"] = module
        raise _Captured()

    leaves = [m for m in paths if not any(True for _ in m.children())]
    handles = [m.register_forward_pre_hook(pre_hook, with_kwargs=True) for m in leaves]
    try:
        with torch.no_grad():
            forward(model, batch)
    except _Captured:
        pass
    except Exception:  # a crash is the forward-pass check's business; fall back to the batch
        pass
    finally:
        for handle in handles:
            handle.remove()
    module = seen.get("module")
    return seen.get("tensor"), module, display_path(paths[module]) if module is not None else ""


def feature_axis(module: nn.Module | None, t: torch.Tensor) -> tuple[int, str]:
    """Which axis holds the features of ``t`` as ``module`` reads it, and the layout name."""
    if isinstance(module, _ConvNd) or (not isinstance(module, (nn.Linear, nn.RNNBase)) and t.dim() >= 4):
        return 1, "channels"
    if t.dim() == 1:
        return 0, "features"
    return t.dim() - 1, "features"


class _Acc:
    def __init__(self, n: int):
        z = lambda: torch.zeros(n, dtype=torch.float64)  # noqa: E731
        self.sum, self.sq = z(), z()
        self.min = torch.full((n,), math.inf, dtype=torch.float64)
        self.max = torch.full((n,), -math.inf, dtype=torch.float64)
        self.integer = torch.ones(n, dtype=torch.bool)
        self.binary = torch.ones(n, dtype=torch.bool)
        self.count = 0

    def add(self, per: torch.Tensor) -> None:
        per = per.double()
        finite = torch.isfinite(per)
        if not bool(finite.all()):  # non-finite inputs are numerical-instability's business
            per = torch.where(finite, per, torch.zeros_like(per))
        self.sum += per.sum(1)
        self.sq += per.pow(2).sum(1)
        self.min = torch.minimum(self.min, per.amin(1))
        self.max = torch.maximum(self.max, per.amax(1))
        self.integer &= (per == per.round()).all(1)
        self.binary &= ((per == 0) | (per == 1)).all(1)
        self.count += per.shape[1]

    def result(self) -> tuple[FeatureStats, ...]:
        n = max(1, self.count)
        mean = self.sum / n
        var = (self.sq / n - mean.pow(2)).clamp(min=0) * (n / max(1, n - 1))
        return tuple(
            FeatureStats(mean=float(m), std=float(math.sqrt(v)), min=float(lo), max=float(hi),
                         integer_valued=bool(i), binary=bool(b))
            for m, v, lo, hi, i, b in zip(mean, var, self.min, self.max, self.integer, self.binary)
        )


def measure_inputs(model: nn.Module, batches: Sequence[Any], forward: Callable[[nn.Module, Any], Any],
                   fallback: Callable[[Any], Any] = lambda b: b, max_features: int = 65536) -> InputStats | None:
    """Per-feature statistics of the first layer's input over ``batches``; None when there is no tensor."""
    acc: _Acc | None = None
    info: dict[str, Any] = {}
    samples = 0
    for batch in batches:
        tensor, module, where = capture_first_input(model, batch, forward)
        if tensor is None:
            tensor, module, where = _first_tensor(fallback(batch)), None, "the batch"
        if tensor is None:
            continue
        if not info:
            info = dict(where=where or "the batch", module_type=type(module).__name__ if module is not None else "",
                        shape=tuple(int(s) for s in tensor.shape), dtype=str(tensor.dtype).replace("torch.", ""))
            skipped = ""
            if not tensor.is_floating_point():
                skipped = ("integer inputs (token ids or indices) go into nn.Embedding"
                           if isinstance(module, (nn.Embedding, nn.EmbeddingBag))
                           else "the inputs are not floating point")
            elif isinstance(module, _SELF_NORMALISING):
                skipped = f"the first layer ({type(module).__name__}) normalises its input itself"
            elif tensor.dim() == 0:
                skipped = "the input is a scalar"
            if skipped:
                return InputStats(layout="", samples=0, features=(), skipped=skipped, **info)
            axis, info["layout"] = feature_axis(module, tensor)
            info["axis"] = axis
        axis = info["axis"]
        if not tensor.is_floating_point() or tensor.dim() != len(info["shape"]):
            continue
        per = tensor.detach().movedim(axis, 0).reshape(tensor.shape[axis], -1) if tensor.dim() > 1 \
            else tensor.detach().reshape(1, -1)
        if acc is not None and per.shape[0] != acc.sum.shape[0]:
            continue  # a batch with another number of features: pool only like with like
        if per.shape[0] > max_features:
            return InputStats(layout=info["layout"], samples=0, features=(),
                              skipped=f"{per.shape[0]} features is more than dldoctor summarises",
                              **{k: v for k, v in info.items() if k not in ("layout", "axis")})
        if acc is None:
            acc = _Acc(per.shape[0])
        acc.add(per)
        samples += int(tensor.shape[0]) if tensor.dim() > 1 else int(tensor.numel())
    if acc is None:
        return None
    return InputStats(where=info["where"], module_type=info["module_type"], shape=info["shape"], dtype=info["dtype"],
                      layout=info["layout"], samples=samples, features=acc.result())
