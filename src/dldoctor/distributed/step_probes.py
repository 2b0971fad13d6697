"""Short, opt-in measurements one rank takes on a few of its own training steps, for the ddp checks.

Each probe is armed at one optimizer step (before its update) and read at the next one, so it sees
exactly one step's backward passes and forwards; steps :data:`PROBED_STEPS` are probed. Nothing is
changed in the user's model or gradients: the hooks only read, and are removed after the last probed
step.

- :class:`GradientProbe`: how the gradient the optimizer steps with relates to the gradients this
  rank's backward passes produced. Tensor hooks on the optimizer's parameters receive each backward
  pass's local gradient before it is accumulated into ``.grad`` (and so before DistributedDataParallel's
  all-reduce, which runs after accumulation); at the step, ``.grad`` holds what the optimizer uses.
  Both are projected on the same fixed random direction per tensor (a seeded normal vector over the
  tensor's first :data:`PROJECTED_ELEMENTS` values, the same on every rank): projections are linear,
  so the mean of the ranks' local projections is the projection of the averaged gradient, and rank 0
  can tell averaged (equal across ranks, equal to the mean), summed (world size x the mean) and never
  reduced (differs across ranks, equal to the rank's own) without moving a gradient across ranks.
- :class:`NormProbe`: for each batch-norm layer in training mode, whether it normalised with this
  rank's own batch statistics. With its own batch's mean, the per-channel mean of the layer's output is
  its bias exactly (the normalised values average to zero over the batch); with statistics computed
  over every rank's batch (``SyncBatchNorm``, or a synchronised layer of the user's own), it is not.
  Measured, not read from the class: a layer of any class is judged by what it computed. It also keeps
  the per-channel batch mean and variance of the layer's input (a few channels), for the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: Optimizer steps (0-based) whose gradients and batch-norm statistics are probed.
PROBED_STEPS = (1, 2)
#: Values of each gradient tensor the projection reads (the first ones, flattened).
PROJECTED_ELEMENTS = 4096
#: Batch-norm layers measured, and channels kept per layer for the evidence, at most.
MAX_NORM_LAYERS = 32
KEPT_CHANNELS = 16


def _direction(index: int, numel: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7919 * (index + 1))
    return torch.randn(min(numel, PROJECTED_ELEMENTS), generator=generator).to(device)


def _project(grad: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    flat = grad.detach().reshape(-1)[: direction.numel()]
    return torch.dot(flat if flat.dtype == direction.dtype else flat.to(direction.dtype), direction)


class GradientProbe:
    """Local and stepped gradients of one step, projected (see the module doc)."""

    def __init__(self) -> None:
        self.readings: list[dict[str, Any]] = []
        self._handles: list[Any] = []
        self._params: list[torch.Tensor] = []
        self._directions: list[torch.Tensor] = []
        self._made: dict[tuple[int, int, torch.device], torch.Tensor] = {}  # directions drawn by the last arm()
        self._local: list[torch.Tensor | None] = []
        self._backwards = 0

    def arm(self, params: Iterable[torch.Tensor]) -> None:
        """Hook the parameters for the next step's backward passes."""
        self.disarm()
        self._params = [p for p in params if p.requires_grad]
        keys = [(i, p.numel(), p.device) for i, p in enumerate(self._params)]
        self._directions = [self._made[k] if k in self._made else _direction(*k) for k in keys]
        self._made = dict(zip(keys, self._directions))
        self._local = [None] * len(self._params)
        self._backwards = 0
        for i, p in enumerate(self._params):
            self._handles.append(p.register_hook(self._hook(i)))

    def _hook(self, index: int) -> Any:
        def hook(grad: torch.Tensor) -> None:
            projected = _project(grad, self._directions[index])
            seen = self._local[index]
            self._local[index] = projected if seen is None else seen + projected
            if index == 0:
                self._backwards += 1

        return hook

    def read(self, step: int) -> None:
        """At the armed step (before its update): the stepped gradients' projections beside the local ones."""
        if not self._params:
            return
        stepped = [_project(p.grad, d) if p.grad is not None else None for p, d in zip(self._params, self._directions)]
        present = [i for i, (a, b) in enumerate(zip(self._local, stepped)) if a is not None and b is not None]
        if present:
            values = torch.stack([torch.stack([self._local[i], stepped[i]]) for i in present]).double().cpu()  # type: ignore[list-item]
            self.readings.append({"step": step, "tensors": present, "local": values[:, 0].tolist(),
                                  "stepped": values[:, 1].tolist(), "backwards": self._backwards})
        self.disarm()

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._params, self._directions, self._local = [], [], []


def _norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and not isinstance(m, nn.modules.instancenorm._InstanceNorm):
            layers.append((name, m))
    return layers[:MAX_NORM_LAYERS]


class NormProbe:
    """Whether each training-mode batch-norm layer used its own batch's statistics (see the module doc)."""

    def __init__(self) -> None:
        self.readings: list[dict[str, Any]] = []
        self._handles: list[Any] = []
        self._seen: dict[str, dict[str, Any]] = {}

    def arm(self, model: nn.Module) -> None:
        self.disarm()
        self._seen = {}
        for name, layer in _norm_layers(model):
            self._handles.append(layer.register_forward_hook(self._hook(name or type(layer).__name__)))

    def _hook(self, name: str) -> Any:
        def hook(layer: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if name in self._seen or not layer.training or not args or not isinstance(args[0], torch.Tensor):
                return
            x = args[0]
            if not isinstance(output, torch.Tensor) or x.dim() < 2 or output.shape != x.shape:
                return
            with torch.no_grad():
                dims = [d for d in range(x.dim()) if d != 1]
                out_mean = output.detach().float().mean(dims)
                weight = getattr(layer, "weight", None)
                bias = getattr(layer, "bias", None)
                scale = weight.detach().float().abs().clamp_min(1e-6) if isinstance(weight, torch.Tensor) else 1.0
                shift = bias.detach().float() if isinstance(bias, torch.Tensor) else 0.0
                offset = float(((out_mean - shift) / scale).abs().max())
                in_mean = x.detach().float().mean(dims)[:KEPT_CHANNELS]
                in_var = x.detach().float().var(dims, unbiased=False)[:KEPT_CHANNELS]
            self._seen[name] = {"layer": name, "class": type(layer).__name__, "batch": int(x.shape[0]),
                                "offset": offset if math.isfinite(offset) else None,
                                "mean": in_mean.cpu().tolist(), "var": in_var.cpu().tolist()}

        return hook

    def read(self, step: int) -> None:
        if self._seen:
            self.readings.append({"step": step, "layers": list(self._seen.values())})
        self.disarm()

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
