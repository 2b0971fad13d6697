"""One configuration, scored: the spec function called with it, then the evaluation
stage's budgeted short training (``probes.training.short``), scored on validation.

Every configuration gets its own :class:`Context` built from the spec function's
result under the same seed, so two trials differ only by their hyper-parameters
(common random numbers: the comparison is paired).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from dldoctor.core.context import Context
from dldoctor.loading.entrypoint import LoadedTarget, with_hparams
from dldoctor.probes.training.short import Budget, EpochRecord, short_training
from dldoctor.runtime.rng import isolated_rng


@dataclasses.dataclass(frozen=True)
class TrialBudget:
    """What one trial may spend (config section ``tune``).

    ``epochs``, ``max_steps``, ``max_gflop`` and ``min_steps`` are work: the steps a
    trial trains are fixed by them and the configuration's model (as for the short
    training run), so trials are ranked on the same work on any machine.
    ``max_seconds`` is a safety limit: a trial that reaches it fails (it is not
    ranked) rather than being scored on part of its run.
    """

    epochs: int
    max_steps: int
    max_seconds: float
    eval_batches: int
    max_gflop: float = math.inf
    min_steps: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrialBudget:
        return cls(int(cfg["epochs"]), int(cfg["max_steps"]), float(cfg["max_seconds"]), int(cfg["eval_batches"]),
                   float(cfg["max_gflop"]), int(cfg["min_steps"]))

    def run_budget(self) -> Budget:
        return Budget(self.epochs, self.max_steps, self.max_seconds, gflop=self.max_gflop, min_steps=self.min_steps,
                      section="tune")


@dataclasses.dataclass(frozen=True)
class Score:
    """A configuration's validation result.

    Attributes:
        error: what the search minimises: validation error (1 - accuracy, or MSE over
            the target variance), else the validation loss; ``inf`` when training
            turned NaN/Inf and the task has no bounded error.
        unit: "1 - accuracy", "relative MSE" or "loss".
        samples: validation samples behind ``error``.
        curve: validation error (or loss) after each epoch.
        stopped_by: as ``TrainingRun.stopped_by`` ("caller" = pruned).
    """

    error: float
    unit: str
    samples: int
    curve: tuple[float, ...]
    stopped_by: str
    seconds: float


def optimizer_settings(spec) -> dict[str, float]:
    """The learning rate and weight decay the spec's optimiser factory sets (first group).

    Built on one dummy parameter, so no model is needed; empty when the factory
    cannot be called that way.
    """
    try:
        optimizer = spec.optimizer([torch.nn.Parameter(torch.zeros(1))])
        group = optimizer.param_groups[0]
    except Exception:  # the user's factory may insist on its model's parameters
        return {}
    return {k: float(group[k]) for k in ("lr", "weight_decay") if isinstance(group.get(k), (int, float))}


def with_optimizer_settings(factory: Callable[..., Any], settings: Mapping[str, float]) -> Callable[..., Any]:
    """The user's optimiser factory, with ``lr`` / ``weight_decay`` set on its groups.

    Groups keep their ratios to the first one (a head trained 10x faster stays 10x).
    """
    def make(params):
        optimizer = factory(params)
        for key, value in settings.items():
            first = optimizer.param_groups[0].get(key) if optimizer.param_groups else None
            for group in optimizer.param_groups:
                if first:
                    group[key] = group[key] * (value / first)
                else:
                    group[key] = value
        return optimizer

    return make


def load_config_spec(base: LoadedTarget, hparams: Mapping[str, Any], optimizer: Mapping[str, float],
                     seed: int) -> LoadedTarget:
    """The target with the spec function called on ``hparams`` (and optimiser settings applied)."""
    loaded = with_hparams(base, hparams, seed)
    if not optimizer:
        return loaded
    spec = loaded.built_spec()
    return dataclasses.replace(loaded, spec=dataclasses.replace(
        spec, optimizer=with_optimizer_settings(spec.optimizer, optimizer)))


def optimizer_driver(base: LoadedTarget, names: list[tuple[str, float, float]], seed: int) -> str | None:
    """The spec argument that the optimiser's learning rate follows, found by measurement.

    ``names`` are (argument, value a, value b): the spec is called with each value and
    the argument is the driver when the learning rate moves in proportion.
    """
    for name, a, b in names:
        try:
            lr_a = optimizer_settings(load_config_spec(base, {name: a}, {}, seed).spec).get("lr")
            lr_b = optimizer_settings(load_config_spec(base, {name: b}, {}, seed).spec).get("lr")
        except Exception:  # a value the spec rejects: not a usable driver
            continue
        if lr_a and lr_b and math.isclose(lr_a / lr_b, a / b, rel_tol=1e-6):
            return name
    return None


def make_context(loaded: LoadedTarget, config, device: torch.device, seed: int) -> Context:
    """A prepared context for one configuration (raises ``EntrypointError`` as the runner's does)."""
    with isolated_rng(seed):
        ctx = Context(loaded, config, device, seed)
        ctx.prepare()
    return ctx


def score(ctx: Context, budget: TrialBudget, on_epoch: Callable[[int, float], bool] | None = None) -> Score:
    """Train for ``budget``'s steps and score on validation; ``on_epoch(epoch, error)`` may stop the run.

    Raises ``CheckIncomplete`` when the trial reaches its safety limit (``tune.max_seconds``):
    the search counts it as a failed trial, never as a score.
    """
    def value(record: EpochRecord) -> float:
        split = record.val
        if split is None:
            return math.inf
        return split.error if split.error is not None else split.loss

    hook = (lambda record: on_epoch(record.epoch, value(record))) if on_epoch else None
    start = time.perf_counter()
    run = short_training(ctx, budget.run_budget(), budget.eval_batches, label="trial", on_epoch=hook)
    curve = tuple(value(r) for r in run.epochs)
    last = run.last
    error = curve[-1] if curve else math.inf
    if run.stopped_by == "nan" or not math.isfinite(error):
        error = 1.0 if run.error_name == "1 - accuracy" else math.inf
    samples = last.val.samples if last is not None and last.val is not None else 0
    return Score(error, run.error_name, samples, curve, run.stopped_by, time.perf_counter() - start)
