"""A larger variant of the user's model, found by measurement through the spec's hyper-parameters.

The capacity experiment asks: does a bigger model, at the same learning rate and on
the same batch, fit what the user's model cannot? dldoctor cannot widen an arbitrary
``nn.Module`` safely, but the entrypoint contract lets ``dldoctor_spec`` take keyword
arguments. An integer argument is a capacity knob when raising it grows the model's
trainable parameters while the batch and the optimiser's learning rate stay the same;
nothing is read from the argument's name. Among the knobs, the one whose increase
grows the model most is used: widening grows parameters quadratically and deepening
only linearly, and "more units per layer" is the first remedy for a small model.
"""

from __future__ import annotations

import dataclasses

from dldoctor.core.context import Context
from dldoctor.loading.entrypoint import LoadedTarget, with_hparams
from dldoctor.loading.spec import spec_parameters
from dldoctor.probes.keys import SPEC_LR
from dldoctor.runtime.tensors import batch_size_of, trainable_count


@dataclasses.dataclass(frozen=True)
class Variant:
    """A spec called with one integer hyper-parameter scaled up."""

    name: str
    value: int
    scaled: int
    parameters: int
    base_parameters: int
    context: Context

    @property
    def describe(self) -> str:
        return (f"{self.name}={self.scaled} instead of {self.value} ({self.parameters:,} trainable parameters "
                f"instead of {self.base_parameters:,})")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _int_arguments(loaded: LoadedTarget) -> dict[str, int]:
    """The spec function's arguments with a positive integer default, at the values it was called with."""
    out = {}
    for name, default in spec_parameters(loaded.spec_fn).items():
        value = loaded.hparams.get(name, default)
        if _positive_int(default) and _positive_int(value):
            out[name] = value
    return out


def spec_lr(ctx: Context) -> float | None:
    """The learning rate of the spec's optimiser (first parameter group), measured once."""
    def measure():
        optimizer = ctx.make_optimizer(ctx.fresh_model())
        return float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else None
    return ctx.measure(SPEC_LR, measure)


def larger_variant(ctx: Context, factor: int, max_growth: float) -> Variant | None:
    """The spec variant with the largest model among its integer arguments scaled by ``factor``.

    Returns None when no argument grows the model (by at least 2x and at most
    ``max_growth``x) without also changing the batch or the learning rate, or when
    the spec function raises for every variant.
    """
    loaded = ctx.loaded
    base_params = trainable_count(ctx.template_model())
    base_batch = batch_size_of(ctx.first_batch("train"))
    base_lr = spec_lr(ctx)
    best: Variant | None = None
    for name, value in sorted(_int_arguments(loaded).items()):
        try:
            child = Context(with_hparams(loaded, {**loaded.hparams, name: value * factor}, ctx.seed), ctx.config,
                            ctx.device, ctx.seed)
            params = trainable_count(child.template_model())
            if not 2 * base_params <= params <= max_growth * base_params:
                continue
            if batch_size_of(child.first_batch("train")) != base_batch or spec_lr(child) != base_lr:
                continue
        except Exception:  # a variant the user's code cannot build is no knob
            continue
        if best is None or params > best.parameters:
            best = Variant(name, value, value * factor, params, base_params, child)
    return best  # the caller gives its context the current deadline and progress view


def larger_for_run(ctx: Context) -> Variant | None:
    """:func:`larger_variant` with the overfit section's factor and growth limit, its context
    given ``ctx``'s deadline and progress view (so a run on it stops where ``ctx``'s would)."""
    cfg = ctx.config.section("overfit")
    variant = larger_variant(ctx, int(cfg["capacity_factor"]), float(cfg["capacity_max_growth"]))
    if variant is not None:
        variant.context.deadline, variant.context.progress = ctx.deadline, ctx.progress
    return variant
