"""Differential experiments on the short training run: the same run with one thing changed.

When the short run falls short (worse than a baseline, far from fitting the training
data, or diverging after it had made progress), the single-batch experiments of the
overfit stage may not show why: a learning rate can fit one batch and still diverge
over an epoch, a weight decay can fit one batch and still hold the whole data set
far from a linear model's error. So the same run is repeated with one change each,
from the same initial weights (the context's seed), on the same data, for the same
planned steps:

- the learning rate 10x lower and 10x higher (every parameter group, before the
  scheduler is built, so a scheduler scales from the changed rate);
- regularisation off (weight decay 0, dropout 0);
- the bounded activation that produces the model's output (a sigmoid, tanh, ReLU,
  ...) removed, when the training targets reach outside its range.

The change that makes the run clearly better names the cause.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dldoctor.probes.overfit.one_batch import disable_regularization
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import iter_tensors, to_device


def _number(module: nn.Module, name: str) -> float:
    value: Any = getattr(module, name)
    return float(value)


#: Bounded activations and the closed range of their outputs (torch's definitions).
_RANGES: dict[type[nn.Module], Callable[[nn.Module], tuple[float, float]]] = {
    nn.Sigmoid: lambda m: (0.0, 1.0),
    nn.Hardsigmoid: lambda m: (0.0, 1.0),
    nn.Tanh: lambda m: (-1.0, 1.0),
    nn.Softsign: lambda m: (-1.0, 1.0),
    nn.Hardtanh: lambda m: (_number(m, "min_val"), _number(m, "max_val")),  # ReLU6 is a Hardtanh(0, 6)
    nn.ReLU: lambda m: (0.0, math.inf),
    nn.Softplus: lambda m: (0.0, math.inf),
    nn.ELU: lambda m: (-_number(m, "alpha"), math.inf),
    nn.CELU: lambda m: (-_number(m, "alpha"), math.inf),
    nn.SELU: lambda m: (-1.7581, math.inf),  # scale x alpha of torch's SELU
}


@dataclasses.dataclass(frozen=True)
class OutputActivation:
    """The bounded activation module whose output is the model's output.

    Attributes:
        name: its qualified name in the model (``net.4``), the same in every fresh model.
        kind: its class name (``Sigmoid``).
        low, high: the range of its outputs.
        outside: share of the training targets outside that range (0..1).
    """

    name: str
    kind: str
    low: float
    high: float
    outside: float

    @property
    def range_text(self) -> str:
        high = "inf" if math.isinf(self.high) else f"{self.high:g}"
        return f"[{self.low:g}, {high}]"


def output_activation(ctx, targets: torch.Tensor | None) -> OutputActivation | None:
    """The bounded activation module that produces the model's output tensor, found by
    running the first training batch through a fresh model with forward hooks (the
    innermost module whose output is the very tensor the model returns); None when the
    output comes from anything else (a Linear, a functional call in ``forward``)."""
    if targets is None or ctx.spec.forward is not None:
        return None
    batch = to_device(ctx.first_batch("train"), ctx.device)
    with isolated_rng(ctx.seed), torch.no_grad():
        model = ctx.fresh_model()
        model.eval()
        produced: list[tuple[str, nn.Module, Any]] = []
        hooks = [module.register_forward_hook(lambda m, i, o, name=name: produced.append((name, m, o)))
                 for name, module in model.named_modules() if name]
        try:
            outputs, _ = ctx.forward_fn(model, batch)
        finally:
            for hook in hooks:
                hook.remove()
    out = next(iter(iter_tensors(outputs)), None)
    if out is None:
        return None
    # Hooks fire innermost first; the first module whose output is the model's output is the innermost.
    found = next(((name, module) for name, module, o in produced if o is out), None)
    if found is None or type(found[1]) not in _RANGES:
        return None
    name, module = found
    low, high = _RANGES[type(module)](module)
    values = targets.float().reshape(-1)
    outside = float(((values < low) | (values > high)).float().mean()) if values.numel() else 0.0
    return OutputActivation(name, type(module).__name__, low, high, outside)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One change to the short run.

    Attributes:
        name: a short key (``lr/10``, ``lr*10``, ``no-regularization``, ``no-output-activation``).
        label: how messages name the run ("the learning rate 10x lower").
        diagnosis: the diagnosis ID the change confirms when it helps.
        lr_scale: factor on every parameter group's learning rate.
        no_regularization: weight decay and dropout off.
        remove: qualified name of a module replaced by ``nn.Identity`` (the output activation).
    """

    name: str
    label: str
    diagnosis: str
    lr_scale: float = 1.0
    no_regularization: bool = False
    remove: str | None = None

    def adjust(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Apply the change to dldoctor's fresh model and optimizer (never the user's objects)."""
        if self.lr_scale != 1.0:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * self.lr_scale
        if self.no_regularization:
            disable_regularization(model, optimizer)
        if self.remove:
            parent_name, _, attr = self.remove.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, nn.Identity())


def lr_variants(factor: float) -> tuple[Variant, Variant]:
    return (Variant(f"lr/{factor:g}", f"the learning rate {factor:g}x lower", "lr-too-high", lr_scale=1 / factor),
            Variant(f"lr*{factor:g}", f"the learning rate {factor:g}x higher", "lr-too-low", lr_scale=factor))


NO_REGULARIZATION = Variant("no-regularization", "weight decay and dropout off", "over-regularization",
                            no_regularization=True)


def without_output_activation(found: OutputActivation) -> Variant:
    return Variant("no-output-activation", f"the output {found.kind} ({found.name}) removed", "dead-activations",
                   remove=found.name)
