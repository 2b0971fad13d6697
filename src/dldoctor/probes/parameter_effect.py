"""Does a parameter affect the loss at all? Perturb it on a copy and watch the loss.

A parameter whose gradient is exactly zero is either cut from the loss by a broken
path (an ``argmax``, ``round`` or comparison in the way: the loss does depend on it,
but its derivative is zero) or has no effect on the loss by construction: a bias
shared by two towers whose outputs are subtracted (``f(a) + b - (f(b) + b)``), a bias
right before a batch norm in training mode (the batch mean removes any constant
shift). The gradient cannot tell them apart; a finite perturbation can: the first
changes the loss, the second leaves it equal up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from dldoctor.runtime.rng import isolated_rng

#: The perturbation's scale relative to the parameter's own RMS: as large as its values, so
#: that hard decisions downstream (argmax, round, a threshold) flip for many samples; and at
#: least this absolute scale, for a parameter that is all zeros (a zero-initialised bias).
MIN_SCALE = 0.1


def _loss(model: nn.Module, batch: Any, forward: Callable, loss_fn: Callable, seed: int) -> float:
    with isolated_rng(seed), torch.no_grad():  # the same dropout masks for every forward
        outputs, targets = forward(model, batch)
        loss = loss_fn(outputs, targets)
    value = loss.detach().float().mean() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
    return float(value)


def loss_changes(model: nn.Module, names: Iterable[str], batch: Any,
                 forward: Callable[[nn.Module, Any], tuple[Any, Any]], loss_fn: Callable[[Any, Any], Any],
                 seed: int) -> dict[str, float]:
    """For each named parameter, the relative change of the loss when it alone is perturbed.

    ``model`` is a copy (its values are restored after each perturbation, its batch-norm
    running statistics move). The perturbation is Gaussian noise of the parameter's RMS
    (at least ``MIN_SCALE``) from a generator seeded with ``seed``; the change is
    ``|loss' - loss| / max(|loss|, 1e-12)``: inf when the perturbed loss is not finite.
    """
    model.train()
    params = dict(model.named_parameters())
    base = _loss(model, batch, forward, loss_fn, seed)
    out: dict[str, float] = {}
    for name in names:
        p = params.get(name)
        if p is None or not math.isfinite(base):
            continue
        kept = p.detach().clone()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            scale = max(float(kept.float().pow(2).mean().sqrt()) if kept.numel() else 0.0, MIN_SCALE)
            noise = torch.randn(kept.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
            p.add_(noise * scale)
        try:
            moved = _loss(model, batch, forward, loss_fn, seed)
        finally:
            with torch.no_grad():
                p.copy_(kept)
        out[name] = abs(moved - base) / max(abs(base), 1e-12) if math.isfinite(moved) else math.inf
    return out
