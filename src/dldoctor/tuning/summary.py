"""A study, summarised: the trials table, the best configuration, the gain over the defaults.

The gain is measured again on fresh seeds (see :mod:`dldoctor.tuning.outcome` for why).
Any worker can summarise: the study holds every worker's trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dldoctor.tuning import study as studies
from dldoctor.tuning.outcome import TrialRow, TuneOutcome, compare, importances, top_spread
from dldoctor.tuning.search import SearchSettings, Tuner


def _rows(study, settings: SearchSettings) -> list[TrialRow]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = t.user_attrs.get("seconds")
        error = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                      if t.intermediate_values else None)
        rows.append(TrialRow(t.number, settings.round_of(t.number), t.state.name.lower(), dict(t.params), error,
                             t.user_attrs.get("epochs"), seconds, t.user_attrs.get("error", ""),
                             t.user_attrs.get("worker", "")))
    return rows


def _baseline(study, tuner: Tuner, complete) -> tuple[float, Any]:
    """The defaults' error: from their trial when the search ran them, else trained once and stored."""
    defaults = tuner.defaults
    for t in complete:
        if t.params == defaults:
            return t.value, t.number
    stored = study.user_attrs.get("baseline_error")
    if stored is None:
        stored = tuner.evaluate(defaults).error
        study.set_user_attr("baseline_error", stored if math.isfinite(stored) else 1e308)
    return float(stored), None


def _retrain(tuner: Tuner, configurations, seeds: list[int], progress) -> list[list[float]]:
    """Each configuration's validation error on each fresh seed (the defaults first, then the best)."""
    errors: list[list[float]] = []
    for label, values in zip(("defaults", "best"), configurations):
        errors.append([])
        for seed in seeds:
            if progress is not None:
                progress({"confirm": label, "seed": seed})
            errors[-1].append(tuner.evaluate(values, seed=seed).error)
    return errors


def summarise(study, tuner: Tuner, settings: SearchSettings, cfg: Mapping[str, Any], progress=None) -> TuneOutcome:
    """The whole study (every worker's trials) as a report; retrains the best and the defaults."""
    optuna = studies.require_optuna()
    state = optuna.trial.TrialState
    rows = _rows(study, settings)
    complete = sorted(study.get_trials(deepcopy=False, states=(state.COMPLETE,)), key=lambda t: (t.value, t.number))
    params = tuple({"name": p.name, "space": p.describe(), "default": p.default if p.has_default else None,
                    "target": p.target} for p in tuner.params)
    common: dict[str, Any] = dict(method=settings.method, study=settings.study,
                                  storage=studies.redact(settings.storage), params=params, trials=tuple(rows))
    if not complete:
        failed = [r.note for r in rows if r.note]
        return TuneOutcome(unit="", best=None, baseline=None, top=None, gain=None, importances=None,
                           notes=("no trial completed" + (f"; the first failure: {failed[0]}" if failed else ""),),
                           **common)
    best = complete[0]
    unit, samples = best.user_attrs.get("unit", ""), int(best.user_attrs.get("samples", 0))
    baseline_error, baseline_number = _baseline(study, tuner, complete)
    notes = []
    full_best = {**tuner.defaults, **best.params}
    if full_best == tuner.defaults:
        gain = None
        notes.append("the defaults are the best configuration found")
    else:
        seeds = [settings.seed + 1 + i for i in range(int(cfg["confirm_seeds"]))]
        z = float(cfg["significance_z"])
        if seeds:
            at_defaults, at_best = _retrain(tuner, (tuner.defaults, full_best), seeds, progress)
            gain = compare(at_defaults, at_best, unit, samples, z, seeds)
        else:
            gain = compare([baseline_error], [best.value], unit, samples, z, ())
            notes.append("the gain compares single runs on the search seed: the best of many trials is optimistic")
    imp, why = importances(study)
    if why:
        notes.append(why)
    running = sum(r.state == "running" for r in rows)
    if running:
        notes.append(f"{running} trial(s) still running in other workers when this one finished")
    top = top_spread([t.value for t in complete], samples, unit, int(cfg["top_trials"]))
    return TuneOutcome(
        unit=unit,
        best={"number": best.number, "params": dict(best.params), "error": best.value, "samples": samples},
        baseline={"number": baseline_number, "params": tuner.defaults, "error": baseline_error},
        top=top, gain=gain, importances=imp, notes=tuple(notes), **common)
