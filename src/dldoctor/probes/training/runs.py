"""The evaluation stage's shared short training run (and its variants), memoised.

Each run trains the steps its budget plans for the model (``probes.training.short.
planned_steps``: the profile's epochs and steps, fewer for an expensive model), never
as many as fit in some seconds. A run that reaches its safety limit raises
``CheckIncomplete``; ``ctx.measure`` keeps that failure, so every check reading the
run (baselines, reference, bias-variance, the resource checks) is incomplete at once
instead of judging a truncated run.
"""

from __future__ import annotations

from typing import Any

from dldoctor.probes import keys
from dldoctor.probes.training.short import Budget, TrainingRun, short_training, zero_inputs_transform
from dldoctor.probes.training.variants import Variant


def budget(ctx, data_fraction: float = 1.0) -> Budget:
    cfg = ctx.config.section("training")
    return Budget(int(cfg["epochs"]), int(cfg["max_steps"]), float(cfg["max_seconds"]), data_fraction,
                  gflop=float(cfg["max_gflop"]), min_steps=int(cfg["min_steps"]), section="training")


def main_run(ctx) -> TrainingRun:
    """The user's model, trained on all the training data for the budget's steps."""
    cfg = ctx.config.section("training")
    return ctx.measure(keys.TRAINING_MAIN, lambda: short_training(ctx, budget(ctx), int(cfg["eval_batches"])))


def fraction_run(ctx, fraction: float) -> TrainingRun:
    cfg = ctx.config.section("training")
    return ctx.measure(keys.TRAINING_FRACTION.at(fraction), lambda: short_training(
        ctx, budget(ctx, fraction), int(cfg["eval_batches"]), label=f"{fraction:.0%} of the data"))


def zero_input_run(ctx) -> TrainingRun:
    """The user's model trained with every input zeroed: what the labels alone allow."""
    cfg = ctx.config.section("training")
    return ctx.measure(keys.TRAINING_ZERO_INPUTS, lambda: short_training(
        ctx, budget(ctx), int(cfg["eval_batches"]), transform=zero_inputs_transform(ctx), label="inputs zeroed"))


def variant_run(ctx, variant: Variant) -> TrainingRun:
    """The main run with one change (``probes.training.variants``), from the same initial weights."""
    cfg = ctx.config.section("training")
    return ctx.measure(keys.TRAINING_VARIANT.at(variant.name), lambda: short_training(
        ctx, budget(ctx), int(cfg["eval_batches"]), label=variant.label, adjust=variant.adjust))


def larger_model_run(ctx) -> tuple[Any, TrainingRun] | None:
    """The main run with a larger model: the spec called with its capacity argument scaled up
    (``probes.overfit.capacity``, the overfit stage's knob and factor), from the same seed;
    None when the spec has no such argument."""
    from dldoctor.probes.overfit.capacity import larger_for_run

    cfg = ctx.config.section("training")

    def measure():
        variant = larger_for_run(ctx)
        if variant is None:
            return None
        return variant, short_training(variant.context, budget(ctx), int(cfg["eval_batches"]),
                                       label=f"larger model ({variant.name}={variant.scaled})")

    return ctx.measure(keys.TRAINING_LARGER, measure)
