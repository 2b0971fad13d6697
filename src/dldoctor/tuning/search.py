"""The search: one worker's loop over a shared study, for every method.

Every method runs through Optuna's ask-and-tell interface, so storage, pruning and
the trials table are one code path: coarse-to-fine (:mod:`.sampler`, the default),
plain random search, a grid, or Bayesian optimisation with Optuna's TPE sampler.
Each trial is the evaluation stage's short training of one configuration, scored on
validation (:mod:`.trial`); after each epoch the pruner (the median rule or
successive halving) may stop it. ``--trials`` is the study's total: a worker stops
when the study holds that many trials, whoever ran them.

The first trials are fixed: the spec's defaults (so the gain is measured within the
search, on the same footing), then the defaults with the learning rate the range
test suggests, when a spec argument is measured to drive the optimiser's rate. A
clear range test also focuses most of coarse-to-fine's round 0 on its descent; one
without a minimum, on the rates where its loss has reached its floor.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from dldoctor.core.errors import DldoctorError
from dldoctor.loading.entrypoint import LoadedTarget
from dldoctor.runtime.rng import isolated_rng
from dldoctor.tuning import study as studies
from dldoctor.tuning.outcome import metric_name, shown
from dldoctor.tuning.space import Param, split_values
from dldoctor.tuning.trial import Score, TrialBudget, load_config_spec, make_context, score


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """How to search (the command's options, resolved)."""

    method: str
    trials: int
    rounds: int
    storage: str | None
    study: str
    seed: int
    offset: int = 0
    """Fixed opening trials (the defaults, the range test's rate); the rounds come after them."""

    @property
    def per_round(self) -> int:
        return max(1, math.ceil((self.trials - self.offset) / max(1, self.rounds)))

    def round_of(self, number: int) -> int:
        return max(0, number - self.offset) // self.per_round


Progress = Callable[[Mapping[str, Any]], None]

#: Who ran a trial (several workers may share a study).
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def make_sampler(settings: SearchSettings, params: tuple[Param, ...], cfg: Mapping[str, Any],
                 focus: Mapping[str, tuple[float, float]] | None = None):
    """The method's sampler; coarse-to-fine counts its rounds after the opening trials and
    draws part of round 0 inside ``focus`` (see ``CoarseToFineSampler``)."""
    optuna = studies.require_optuna()
    if settings.method == "coarse-to-fine":
        from dldoctor.tuning.sampler import CoarseToFineSampler

        return CoarseToFineSampler(settings.per_round, keep=float(cfg["keep_fraction"]),
                                   min_keep=int(cfg["min_keep"]), pad=float(cfg["pad"]),
                                   min_width=float(cfg["min_width"]), seed=settings.seed, offset=settings.offset,
                                   focus=focus, focus_share=float(cfg["focus_share"]))
    if settings.method == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    if settings.method == "grid":
        from dldoctor.tuning.sampler import GridInOrder

        return GridInOrder(grid_of(params, cfg), seed=settings.seed)
    if settings.method == "bayes":
        return optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=min(settings.per_round, 10))
    raise DldoctorError(f"unknown search method {settings.method!r}", hint=f"Use one of: {', '.join(studies.METHODS)}")


def grid_of(params: tuple[Param, ...], cfg: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {p.name: p.grid(int(cfg["grid_points"])) for p in params}


def make_pruner(cfg: Mapping[str, Any]):
    optuna = studies.require_optuna()
    kind = cfg["pruner"]
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(cfg["prune_startup_trials"]),
                                           n_warmup_steps=int(cfg["prune_warmup_epochs"]))
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=int(cfg["prune_warmup_epochs"]))
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise DldoctorError(f"config tune.pruner must be median, halving or none; got {kind!r}")


def suggest(trial, param: Param) -> Any:
    """Ask the trial for ``param``'s value."""
    if param.kind == "categorical":
        return trial.suggest_categorical(param.name, list(param.choices))
    low, high = param.bounds()
    if param.kind == "int":
        return trial.suggest_int(param.name, int(low), int(high), log=param.log)
    return trial.suggest_float(param.name, float(low), float(high), log=param.log)


class Tuner:
    """Scores configurations of one target (see the module docstring)."""

    def __init__(self, base: LoadedTarget, params: tuple[Param, ...], config, device, seed: int,
                 budget: TrialBudget):
        self.base = base
        self.params = params
        self.config = config
        self.device = device
        self.seed = seed
        self.budget = budget

    @property
    def defaults(self) -> dict[str, Any]:
        """The configuration the spec function gets when called with no arguments."""
        return {p.name: p.default for p in self.params if p.has_default}

    def evaluate(self, values: Mapping[str, Any], seed: int | None = None,
                 on_epoch: Callable[[int, float], bool] | None = None) -> Score:
        """Train and score one configuration (raises ``EntrypointError`` when the spec rejects it)."""
        seed = self.seed if seed is None else seed
        hparams, optimizer = split_values(self.params, values)
        with isolated_rng(None):
            ctx = make_context(load_config_spec(self.base, hparams, optimizer, seed), self.config, self.device, seed)
            return score(ctx, self.budget, on_epoch)


def first_trials(tuner: Tuner, lr_param: str | None, suggestion: float | None) -> list[dict[str, Any]]:
    """The fixed opening trials: the defaults, then the defaults at the suggested learning rate."""
    params = {p.name: p for p in tuner.params}
    defaults = tuner.defaults
    fixed = [defaults] if all(p.has_default and p.contains(p.default) for p in tuner.params) else []
    if lr_param in params and suggestion:
        p = params[lr_param]
        low, high = p.bounds()
        value = min(high, max(low, suggestion))
        value = int(round(value)) if p.kind == "int" else value
        opening = {k: v for k, v in defaults.items() if params[k].contains(v)}  # the rest is sampled
        opening[lr_param] = value
        fixed.append(opening)
    return fixed


def lr_focus(params: tuple[Param, ...], lr_param: str | None, reading, widen: float) -> dict[str, tuple[float, float]]:
    """Round 0's focus for the learning rate, from the range test, widened ``widen`` x each side.

    A clear reading focuses on its descent. A curve that falls and then stays at its
    floor to the top of the sweep (no minimum) says that no rate from where the floor
    is reached upwards limits training; slower rates below it take longer to get
    there, so the focus is that floor, up to the top of the range. Only for a range
    parameter (a list is searched whole).
    """
    param = next((p for p in params if p.name == lr_param and p.kind == "float"), None)
    if param is None or reading is None or not reading.descent_low:
        return {}
    if reading.status == "clear":
        low, high = reading.descent_low / widen, reading.descent_high * widen
    elif reading.status == "none" and reading.floor_low:  # a descent without a minimum
        low, high = reading.floor_low / widen, param.high
    else:
        return {}
    low, high = max(param.low, low), min(param.high, high)
    return {param.name: (low, high)} if low < high else {}


def _run_trial(study, trial, tuner: Tuner, values: Mapping[str, Any]) -> tuple[str, float | None, str]:
    """Train one asked trial and tell the study; returns (outcome, value, unit)."""
    state = studies.require_optuna().trial.TrialState

    def on_epoch(epoch: int, error: float) -> bool:
        if not math.isfinite(error):
            return False
        trial.report(error, epoch)
        # A trial that has used its whole budget is finished, not pruned.
        return epoch < tuner.budget.epochs and trial.should_prune()

    try:
        result = tuner.evaluate(values, on_epoch=on_epoch)
    except Exception as exc:  # the spec or the model rejects this configuration: a failed trial, not search
        message = exc.message if isinstance(exc, DldoctorError) else f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("error", message[:500])
        study.tell(trial, state=state.FAIL)
        return "failed", None, ""
    except BaseException:
        study.tell(trial, state=state.FAIL)
        raise
    for key, val in (("unit", result.unit), ("samples", result.samples), ("epochs", len(result.curve)),
                     ("seconds", round(result.seconds, 3))):
        trial.set_user_attr(key, val)
    if result.stopped_by == "caller":
        study.tell(trial, state=state.PRUNED)
        return "pruned", (result.curve[-1] if result.curve else None), result.unit
    study.tell(trial, result.error)
    return "complete", result.error, result.unit


def run_worker(study, tuner: Tuner, settings: SearchSettings, opening: list[dict[str, Any]],
               progress: Progress | None = None) -> None:
    """Run trials until the study holds ``settings.trials`` of them."""
    state = studies.require_optuna().trial.TrialState
    for values in opening:
        study.enqueue_trial(values, skip_if_exists=True)
    started = time.perf_counter()
    mine = 0
    unit = ""
    while len(study.get_trials(deepcopy=False)) < settings.trials:
        trial = study.ask()
        trial.set_user_attr("worker", WORKER)
        values = {p.name: suggest(trial, p) for p in tuner.params}
        outcome, value, trial_unit = _run_trial(study, trial, tuner, values)
        unit = trial_unit or unit
        mine += 1
        if progress is None:
            continue
        done = len(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED, state.FAIL)))
        try:
            best = study.best_value
        except ValueError:  # nothing complete yet
            best = None
        progress({"number": trial.number, "round": settings.round_of(trial.number), "state": outcome,
                  "value": value, "best": best, "metric": metric_name(unit), "best_shown": shown(unit, best),
                  "done": done, "total": settings.trials,
                  "eta_s": (time.perf_counter() - started) / mine * max(0, settings.trials - done), "params": values})
