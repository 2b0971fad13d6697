"""Statistics of what the network's first trainable layer actually receives, per feature or channel.

The input is taken where weights first see it: the first floating tensor given to
the first leaf module that has trainable parameters of its own (or is one of torch's
weight layers, trainable or frozen, or a normalisation layer). Parameter-free modules
before it (``Flatten``, a ``Normalize`` with buffer or frozen mean and std, a
``LayerNorm``/``BatchNorm`` without affine parameters that is not first) and
arithmetic in ``forward`` (``x / 255``) are part of the model's own preprocessing: the
scale that matters for optimisation is the one after them. The forward pass is stopped
right there, so measuring a batch costs little. When no leaf module of that kind
receives the input, the first module owning trainable parameters directly is used
(a model written with bare ``nn.Parameter`` weights), then the batch's first floating
tensor.

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
    """What the first trainable (weight-bearing) layer receives.

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
    #: parameter-free modules the inputs went through before reaching ``where``
    after: tuple[str, ...] = ()


class _Captured(BaseException):
    """Stops the forward once the first weight-bearing leaf module has been given its input.

    A BaseException, so that user code with ``except Exception`` lets it through.
    """


#: torch's layers that multiply the input by weights: their input scale matters even when
#: frozen (a pretrained stem expects the scale it was trained on).
_WEIGHT_LAYERS = (nn.Linear, nn.Bilinear, _ConvNd, nn.RNNBase, nn.RNNCellBase, nn.Embedding, nn.EmbeddingBag)


def _owns_trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _first_tensor(obj: Any) -> torch.Tensor | None:
    tensors = [t for t in iter_tensors(obj) if t.numel() > 0]
    return next((t for t in tensors if t.is_floating_point()), tensors[0] if tensors else None)


@dataclasses.dataclass
class _Capture:
    tensor: torch.Tensor | None = None
    module: nn.Module | None = None
    #: the first non-leaf module with trainable parameters of its own, and its input
    outer: tuple[torch.Tensor | None, nn.Module] | None = None
    #: parameter-free leaf modules that ran before the capture (the model's own preprocessing)
    passed: list[nn.Module] = dataclasses.field(default_factory=list)


def capture_first_input(model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], Any]
                        ) -> tuple[torch.Tensor | None, nn.Module | None, str, tuple[str, ...]]:
    """The tensor the first weight-bearing module receives, that module, its path, and the
    paths of the parameter-free leaf modules that ran before it."""
    paths: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(module, name)
    leaves = {m for m in paths if not any(True for _ in m.children())}
    targets = {m for m in leaves if _owns_trainable(m) or isinstance(m, _WEIGHT_LAYERS + _SELF_NORMALISING)}
    seen = _Capture()

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if seen.module is not None:
            return
        if module in targets:
            seen.tensor, seen.module = _first_tensor((args, kwargs)), module
            raise _Captured()
        if module in leaves:
            if module not in seen.passed:
                seen.passed.append(module)
        elif seen.outer is None and _owns_trainable(module):
            seen.outer = (_first_tensor((args, kwargs)), module)

    handles = [m.register_forward_pre_hook(pre_hook, with_kwargs=True) for m in paths]
    # Eval mode: an input dropout before the first layer zeroes entries and rescales the rest
    # by 1/(1-p), adding spread that is not in the data (and hiding integer-valued pixels).
    # Batch norm is unaffected: it is a capture target, so it never runs before the capture.
    modes = {m: m.training for m in paths}
    model.eval()
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
        for m, training in modes.items():
            m.training = training
    if seen.module is None and seen.outer is not None:
        seen.tensor, seen.module = seen.outer
        seen.passed = []  # what ran inside it is not known to come before its weights
    if seen.module is None:
        return None, None, "", ()
    passed = tuple(f"{display_path(paths[m])} ({type(m).__name__})" for m in seen.passed)
    return seen.tensor, seen.module, display_path(paths[seen.module]), passed


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
        tensor, module, where, after = capture_first_input(model, batch, forward)
        if tensor is None:
            tensor, module, where, after = _first_tensor(fallback(batch)), None, "the batch", ()
        if tensor is None:
            continue
        if not info:
            info = dict(where=where or "the batch", module_type=type(module).__name__ if module is not None else "",
                        shape=tuple(int(s) for s in tensor.shape), dtype=str(tensor.dtype).replace("torch.", ""),
                        after=after)
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
                      layout=info["layout"], samples=samples, features=acc.result(), after=info["after"])
