"""The overfit stage's runs, shared by its checks: one baseline, memoised experiments.

Every run starts from the context's fixed initial weights; a run with a given setup
and step count is made once per diagnosis, whichever check asks first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch

from dldoctor.probes import keys
from dldoctor.probes.overfit.capacity import Variant, larger_for_run, spec_lr
from dldoctor.probes.overfit.one_batch import Curve, Setup, overfit, slice_range
from dldoctor.runtime.tensors import batch_size_of


def convergence_target(initial: float, cfg: Mapping[str, float], floor: float | None = None) -> float:
    """The loss at which one batch counts as fitted.

    A loss is taken to bottom out at 0, unless ``floor`` says it bottoms out below 0 (a
    negated correlation or similarity reaches -1 at a perfect prediction): the batch
    is then fitted once the loss has come within the same share of the way down to it.
    """
    if floor is not None and math.isfinite(floor) and floor < 0 and math.isfinite(initial) and initial > floor:
        return floor + max(float(cfg["converged_abs"]), float(cfg["converged_rel"]) * (initial - floor))
    if not math.isfinite(initial) or initial <= 0:
        return -math.inf
    return max(float(cfg["converged_abs"]), float(cfg["converged_rel"]) * initial)


def loss_floor(ctx) -> float | None:
    """The loss at a perfect prediction (outputs equal to the targets) when that is its
    minimum below 0, else None (the loss is then taken to bottom out at 0).

    Measured by the loss probe's sign test: the perfect prediction must be a stationary
    point of the loss (``loss_contract.stationary_rel``) and lower than the model's
    outputs, as for a negated correlation (-1) or a negated cosine similarity.
    """
    from dldoctor.probes.loss_probe import measure_loss

    probe = measure_loss(ctx)
    perfect, at_out = probe.loss_at_perfect, probe.loss_at_outputs
    g_perfect, g_out = probe.grad_at_perfect, probe.grad_at_outputs
    if perfect is None or at_out is None or g_perfect is None or g_out is None or g_out <= 0:
        return None
    if perfect >= 0 or perfect >= at_out or g_perfect > float(ctx.config.get("loss_contract.stationary_rel")) * g_out:
        return None
    return perfect


def _config(ctx) -> dict:
    return dict(ctx.config.section("overfit"))


def regularization(ctx) -> dict[str, float]:
    """Weight decay of the spec's optimiser and the largest dropout rate in the model."""
    def measure():
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        decay = max((float(g.get("weight_decay", 0.0) or 0.0) for g in optimizer.param_groups), default=0.0)
        dropout = max((float(m.p) for m in model.modules()
                       if isinstance(m, torch.nn.modules.dropout._DropoutNd)), default=0.0)
        return {"weight_decay": decay, "dropout": dropout}
    return ctx.measure(keys.REGULARIZATION, measure)


def _concat(batches: list[Any]) -> Any:
    """One batch made of consecutive batches (every tensor concatenated on dim 0)."""
    first = batches[0]
    if isinstance(first, torch.Tensor):
        # A scalar in the batch (a count, a flag) is not per sample: it is kept, not joined.
        return torch.cat(batches, dim=0) if first.dim() > 0 else first
    if isinstance(first, (list, tuple)):
        parts = [_concat([b[i] for b in batches]) for i in range(len(first))]
        return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)
    if isinstance(first, dict):
        return {k: _concat([b[k] for b in batches]) for k in first}
    return first


def overfit_batches(ctx, count: int = 1) -> list[Any]:
    """Up to ``count`` training batches of ``overfit.batch_size`` samples (0: the loader's batches)."""
    size = int(_config(ctx)["batch_size"])
    if size <= 0:
        return ctx.batches("train", count)
    per_loader_batch = max(1, batch_size_of(ctx.first_batch("train")) or 0)
    needed = -(-size * count // per_loader_batch)
    whole = _concat(ctx.batches("train", needed))
    parts = [slice_range(whole, i * size, (i + 1) * size) for i in range(count)]
    return [p for p in parts if batch_size_of(p)]


def heldout_batch(ctx, after: int = 1) -> Any | None:
    """Samples a run on the first ``after`` training batches does not train on: the next
    ``after`` training batches as one (as many held-out samples as trained ones, for a
    held-out score as precise as the run is long), else the first validation batch."""
    batches = overfit_batches(ctx, 2 * after)
    if len(batches) > after:
        return _concat(batches[after:])
    if ctx.has_split("val"):
        return ctx.first_batch("val")
    return None


def lr_base_scale(ctx) -> float:
    """Scale that turns the spec's learning rate into ``overfit.lr`` when that is set."""
    wanted = float(_config(ctx)["lr"])
    current = spec_lr(ctx)
    if wanted > 0 and current:
        return wanted / current
    return 1.0


def run(ctx, setup: Setup, steps: int | None = None, heldout: bool = False) -> Curve:
    """The run for ``setup`` (memoised), from the same initial weights as every other run."""
    cfg = _config(ctx)
    steps = int(steps or (cfg["steps"] if setup == Setup() else cfg["experiment_steps"]))
    full = dataclasses.replace(setup, lr_scale=setup.lr_scale * lr_base_scale(ctx))
    key = keys.OVERFIT_RUN.at(full.key, steps, heldout)

    def measure() -> Curve:
        batches = overfit_batches(ctx, setup.batches)
        floor = loss_floor(ctx)
        return overfit(ctx, full, steps, lambda initial: convergence_target(initial, cfg, floor), batches,
                       heldout_batch(ctx, setup.batches) if heldout else None, label=setup.label)

    return ctx.measure(key, measure)


def larger_model(ctx) -> tuple[Variant, Curve] | None:
    """The user's setup with a larger model (see ``probes.overfit.capacity``), on the same batch
    and at the same learning rate; None when the spec has no capacity argument."""
    cfg = _config(ctx)

    def measure():
        variant = larger_for_run(ctx)
        if variant is None:
            return None
        full = Setup(lr_scale=lr_base_scale(ctx))
        floor = loss_floor(ctx)
        curve = overfit(variant.context, full, int(cfg["experiment_steps"]),
                        lambda initial: convergence_target(initial, cfg, floor),
                        overfit_batches(ctx, 1), label=f"larger model ({variant.name}={variant.scaled})")
        return variant, curve

    return ctx.measure(keys.LARGER_MODEL, measure)


def baseline(ctx) -> Curve:
    """The user's own setup on one batch, with a held-out evaluation at the end."""
    return run(ctx, Setup(), heldout=True)
