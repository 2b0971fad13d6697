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
import inspect
from dldoctor.core.context import Context
from dldoctor.loading.entrypoint import LoadedTarget, call_spec_function
from dldoctor.probes.rng import isolated_rng
from dldoctor.probes.tensors import batch_size_of, trainable_count


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


def _int_arguments(fn) -> dict[str, int]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in params.items()
            if isinstance(p.default, int) and not isinstance(p.default, bool) and p.default > 0}


def spec_lr(ctx: Context) -> float | None:
    """The learning rate of the spec's optimiser (first parameter group), measured once."""
    def measure():
        optimizer = ctx.make_optimizer(ctx.fresh_model())
        return float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else None
    return ctx.measure("spec_lr", measure)


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
    for name, value in sorted(_int_arguments(loaded.spec_fn).items()):
        if name in loaded.hparams:
            value = loaded.hparams[name]
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                continue
        hparams = {**loaded.hparams, name: value * factor}
        try:
            with isolated_rng(ctx.seed):
                spec = call_spec_function(loaded.spec_fn, loaded.target, loaded.user_roots, hparams)
            child = Context(LoadedTarget(spec=spec, target=loaded.target, spec_fn=loaded.spec_fn, hparams=hparams,
                                         user_roots=loaded.user_roots), ctx.config, ctx.device, ctx.seed)
            params = trainable_count(child.template_model())
            if not 2 * base_params <= params <= max_growth * base_params:
                continue
            if batch_size_of(child.first_batch("train")) != base_batch or spec_lr(child) != base_lr:
                continue
        except Exception:  # noqa: BLE001 - a variant the user's code cannot build is no knob
            continue
        if best is None or params > best.parameters:
            best = Variant(name, value, value * factor, params, base_params, child)
    return best  # the caller gives its context the current deadline and progress view
