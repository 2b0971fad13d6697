"""One ``dldoctor tune`` worker, end to end: range test, plan the space, search, summarise.

The learning-rate range test runs first, as the ``lr-range`` check of the tune
stage (so its lr-too-low / lr-too-high findings and the JSON report are those of
every command); its reading informs the plan: the default space reaches 10x around
a suggestion, and the suggested rate is tried as the second trial.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dldoctor.core.errors import DldoctorError, ExitCode, UsageError
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.loading.entrypoint import LoadedTarget
from dldoctor.loading.spec import spec_parameters
from dldoctor.readings.lr import LrReading
from dldoctor.tuning import study as studies
from dldoctor.tuning.outcome import TuneOutcome
from dldoctor.tuning.search import (
    SearchSettings,
    Tuner,
    first_trials,
    grid_of,
    lr_focus,
    make_pruner,
    make_sampler,
    run_worker,
)
from dldoctor.tuning.space import OPTIMIZER, Param, default_space, parse_space
from dldoctor.tuning.summary import summarise
from dldoctor.tuning.trial import TrialBudget, optimizer_driver, optimizer_settings


def plan(base: LoadedTarget, reading: LrReading | None, cfg: Mapping[str, Any],
         seed: int) -> tuple[tuple[Param, ...], str | None]:
    """The parameters to search and the name of the one that sets the learning rate (if known)."""
    params = parse_space(base.built_spec().search_space, base.spec_fn)
    suggestion = reading.suggestion if reading is not None else None  # None when there is no clear minimum
    if params:
        ranges = [(p.name, *p.bounds()) for p in params if p.kind == "float" and p.bounds()[0] > 0]
        return params, optimizer_driver(base, ranges, seed)
    floats = [(name, value, value * 2) for name, value in spec_parameters(base.spec_fn).items()
              if isinstance(value, float) and value > 0]
    driver = optimizer_driver(base, floats, seed)
    params = default_space(optimizer_settings(base.spec), driver, float(cfg["default_span"]), suggestion)
    return params, driver or next((p.name for p in params if p.target == OPTIMIZER and p.key == "lr"), None)


def run_search(base: LoadedTarget, params: tuple[Param, ...], lr_param: str | None, reading: LrReading | None,
               config, device, settings: SearchSettings, progress=None) -> TuneOutcome:
    """Open (or join) the study, run this worker's trials, and summarise the whole study."""
    cfg = config.section("tune")
    tuner = Tuner(base, params, config, device, settings.seed, TrialBudget.from_config(cfg))
    suggestion = reading.suggestion if reading is not None else None  # None when there is no clear minimum
    opening = first_trials(tuner, lr_param, suggestion)
    if settings.method == "grid":
        # A grid takes whole configurations only, and has an end.
        opening = [o for o in opening if len(o) == len(params)]
        size = math.prod(len(v) for v in grid_of(params, cfg).values())
        settings = dataclasses.replace(settings, trials=min(settings.trials, size + len(opening)))
    settings = dataclasses.replace(settings, offset=len(opening))
    sampler = make_sampler(settings, params, cfg, lr_focus(params, lr_param, reading, float(cfg["focus_widen"])))
    fingerprint = studies.space_fingerprint(params, settings.method)
    study = studies.open_study(settings.storage, settings.study, sampler, make_pruner(cfg), fingerprint,
                               {"target": base.target, "method": settings.method,
                                "space": {p.name: p.describe() for p in params}})
    run_worker(study, tuner, settings, opening, progress)
    return summarise(study, tuner, settings, cfg, progress)


def load_for_search(target: str | None, spec: str | None, seed: int) -> LoadedTarget:
    """Load the target and check its search space before anything trains (a usage error fails fast)."""
    from dldoctor.loading.entrypoint import load_target
    from dldoctor.runtime.rng import isolated_rng

    studies.require_optuna()
    with isolated_rng(seed):  # seeds, and puts every generator back afterwards
        base = load_target(target, spec)
    parse_space(base.built_spec().search_space, base.spec_fn)
    if base.built_spec().val_loader is None:
        raise UsageError("tuning scores each trial on validation data, and the spec has no val_loader",
                         hint='Add "val_loader": DataLoader(val_set, batch_size=256) to the spec '
                              "(dldoctor tune --lr-finder needs none).")
    return base


def _require_range_test(diagnosis) -> None:
    """A training step that crashes cannot be tuned: say so instead of failing every trial."""
    for check in diagnosis.checks:
        if check.name == "lr-range" and check.status.value in ("skipped", "errored"):
            raise DldoctorError(f"cannot tune: the learning-rate range test was {check.status.value} ({check.reason})",
                                hint="dldoctor probe TARGET shows what breaks the training step.")


@dataclasses.dataclass(frozen=True)
class TuneRequest:
    """What ``dldoctor tune`` was asked (beside the run options)."""

    lr_only: bool = False
    method: str = "coarse-to-fine"
    storage: str | None = None
    study: str | None = None


def tune_target(options, request: TuneRequest, events=None, measurements: dict | None = None):
    """Range test (the tune stage's checks), then, unless ``lr_only``, this worker's search.

    Returns the diagnosis with ``reports["lr_range"]`` and ``reports["tuning"]``. Raises
    ``DldoctorError`` for usage problems; a broken entrypoint comes back as the
    runner's fatal diagnosis (exit code 2), as for every command.
    """
    from dldoctor.core.context import resolve_device
    from dldoctor.core.runner import diagnose, resolve_config

    options = dataclasses.replace(options, stages=(Stage.TUNE,), command="tune",
                                  overrides=(("lr_finder.enabled", True), *options.overrides))
    config = resolve_config(options)
    seed = options.seed if options.seed is not None else int(config.get("run.seed"))
    base = None if request.lr_only else load_for_search(options.target, options.spec, seed)
    measurements = {} if measurements is None else measurements
    diagnosis = diagnose(options, events=events, config=config, measurements=measurements, loaded=base)
    if base is None or diagnosis.exit_code(FailOn.NEVER) is ExitCode.USAGE:
        return diagnosis
    _require_range_test(diagnosis)
    reading = measurements["lr_range"][1] if "lr_range" in measurements else None
    cfg = config.section("tune")
    params, lr_param = plan(base, reading, cfg, seed)
    if not params:
        raise UsageError("nothing to tune: the spec has no search_space and its optimiser has no learning rate",
                         hint='Add "search_space": {"lr": {"low": 1e-5, "high": 1e-1, "log": True}} to the spec.')
    settings = SearchSettings(method=request.method, trials=int(cfg["trials"]), rounds=int(cfg["rounds"]),
                              storage=request.storage,
                              study=request.study or studies.default_study_name(base.target, params, request.method),
                              seed=seed)
    outcome = run_search(base, params, lr_param, reading, config, resolve_device(options.device), settings,
                         progress=getattr(events, "trial", None))
    return dataclasses.replace(diagnosis, reports={**diagnosis.reports, "tuning": outcome.to_dict()})
