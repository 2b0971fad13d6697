"""The evaluation stage's shared short training run (and its variants), memoised."""

from __future__ import annotations

from dldoctor.probes.short_training import Budget, TrainingRun, short_training, zero_inputs_transform


def budget(ctx, data_fraction: float = 1.0) -> Budget:
    cfg = ctx.config.section("training")
    return Budget(int(cfg["epochs"]), int(cfg["max_steps"]), float(cfg["max_seconds"]), data_fraction)


def main_run(ctx) -> TrainingRun:
    """The user's model, trained on all the training data within the budget."""
    cfg = ctx.config.section("training")
    return ctx.measure("training:main", lambda: short_training(ctx, budget(ctx), int(cfg["eval_batches"])))


def fraction_run(ctx, fraction: float) -> TrainingRun:
    cfg = ctx.config.section("training")
    return ctx.measure(f"training:fraction:{fraction}", lambda: short_training(
        ctx, budget(ctx, fraction), int(cfg["eval_batches"]), label=f"{fraction:.0%} of the data"))


def zero_input_run(ctx) -> TrainingRun:
    """The user's model trained with every input zeroed: what the labels alone allow."""
    cfg = ctx.config.section("training")
    return ctx.measure("training:zero_inputs", lambda: short_training(
        ctx, budget(ctx), int(cfg["eval_batches"]), transform=zero_inputs_transform(ctx), label="inputs zeroed"))
