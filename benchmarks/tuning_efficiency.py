#!/usr/bin/env python3
"""Tuning benchmark: trials-to-target of coarse-to-fine, plain random and grid search.

For each example of ``examples/tuning`` with a ``search_space``:

1. A dense grid (``--dense`` values per range, every choice of a list) is trained
   with the same trial budget and seed as the search; its best validation
   accuracy minus 1 point is the target.
2. Each method runs ``--trials`` trials for each of ``--seeds`` sampler seeds, with
   pruning off (every trial counts the same) and the training seed fixed, so only
   the sampling differs. Trials-to-target is the first trial whose validation
   accuracy reaches the target; a run that never does counts as ``trials + 1``
   (censored, and reported). The cap is ``dldoctor tune``'s own budget by default
   (``tune.trials``, 24), the same for every method: coarse-to-fine's rounds are then
   the size the tool uses (a larger cap makes its round 0 longer), and cutting
   random search's long tail at the cap can only flatter random search.

Methods: ``coarse-to-fine`` is dldoctor's default as ``dldoctor tune`` runs it
(the defaults and the range test's learning rate first, and round 0 focused on the
range test's descent); ``c2f-bare`` is the same sampler without the range test
and the opening trials; ``random`` is Optuna's plain random
search and ``grid`` a 5-point grid in random order (Optuna's GridSampler), both
without openings, as a user would run them by hand. The range test's cost is
reported in training steps and in trial-equivalents. Results are ratios; nothing
is asserted. Usage:

    python benchmarks/tuning_efficiency.py [-k NAME] [--seeds 10] [--trials 24] [--dense 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

METHODS = ("coarse-to-fine", "c2f-bare", "random", "grid")


def load(path: Path):
    """The target, its configuration, the range test's reading, the space and the lr parameter."""
    import torch

    from dldoctor.core.runner import RunOptions, resolve_config
    from dldoctor.tuning.session import TuneRequest, load_for_search, plan, tune_target

    options = RunOptions(target=str(path), device="cpu", overrides=(("tune.pruner", "none"),))
    config = resolve_config(options)
    measurements: dict = {}
    tune_target(options, TuneRequest(lr_only=True), measurements=measurements)
    sweep, reading = measurements["lr_range"]
    base = load_for_search(str(path), None, 0)
    params, lr_param = plan(base, reading, config.section("tune"), 0)
    return base, config, torch.device("cpu"), sweep, reading, params, lr_param


class Evaluations:
    """Every configuration trained once (the training seed is fixed, so a repeat is a lookup)."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.cache: dict[tuple, float] = {}
        self.trained = 0

    def error(self, values: dict) -> float:
        key = tuple(sorted(values.items()))
        if key not in self.cache:
            self.cache[key] = self.tuner.evaluate(values).error
            self.trained += 1
        return self.cache[key]


def dense_grid(params, points: int) -> list[dict]:
    axes = [p.grid(points) for p in params]
    return [dict(zip((p.name for p in params), combo)) for combo in itertools.product(*axes)]


def search(method: str, seed: int, trials: int, target_error: float, evaluations: Evaluations, params, config,
           opening, focus) -> int:
    """Trials-to-target of one search (stopped there; ``trials + 1`` when never reached)."""
    import optuna

    from dldoctor.tuning.search import SearchSettings, make_sampler, suggest

    full = method == "coarse-to-fine"
    opening = opening if full else []
    settings = SearchSettings("coarse-to-fine" if method == "c2f-bare" else method, trials,
                              int(config.get("tune.rounds")), None, "bench", seed, offset=len(opening))
    sampler = make_sampler(settings, params, config.section("tune"), focus if full else None)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for values in opening:
        study.enqueue_trial(values)
    for number in range(trials):
        trial = study.ask()
        values = {p.name: suggest(trial, p) for p in params}
        error = evaluations.error(values)
        study.tell(trial, error)
        if error <= target_error + 1e-12:
            return number + 1
    return trials + 1


def run_example(path: Path, seeds: int, trials: int, points: int) -> dict:
    import optuna

    from dldoctor.tuning.search import Tuner, first_trials, lr_focus
    from dldoctor.tuning.trial import TrialBudget

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    base, config, device, sweep, reading, params, lr_param = load(path)
    budget = TrialBudget.from_config(config.section("tune"))
    tuner = Tuner(base, params, config, device, 0, budget)
    evaluations = Evaluations(tuner)
    grid = dense_grid(params, points)
    grid_errors = [evaluations.error(values) for values in grid]
    best_grid = min(grid_errors)
    target = best_grid + 0.01
    opening = first_trials(tuner, lr_param, reading.suggestion)
    focus = lr_focus(params, lr_param, reading, float(config.get("tune.focus_widen")))
    out = {"example": path.name, "dense_grid_size": len(grid), "dense_grid_best_accuracy": 1 - best_grid,
           "target_accuracy": 1 - target, "range_test_steps": len(sweep.losses),
           "range_test_trial_equivalents": len(sweep.losses) / (budget.epochs * _steps_per_epoch(tuner)),
           "range_test": reading.summary(), "methods": {}}
    for method in METHODS:
        counts = [search(method, seed, trials, target, evaluations, params, config, opening, focus)
                  for seed in range(seeds)]
        out["methods"][method] = {"trials_to_target": counts, "mean": statistics.fmean(counts),
                                  "median": statistics.median(counts), "censored": sum(c > trials for c in counts)}
    random_mean = out["methods"]["random"]["mean"]
    out["ratios_to_random"] = {m: out["methods"][m]["mean"] / random_mean for m in METHODS}
    out["configurations_trained"] = evaluations.trained
    out["seconds"] = time.perf_counter() - started
    return out


def _steps_per_epoch(tuner) -> int:
    loader = tuner.base.spec.train_loader
    try:
        return max(1, len(loader))
    except TypeError:
        return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only examples whose file name contains this")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per search, every method alike (default: the tune.trials of dldoctor's "
                             "configuration, so coarse-to-fine's rounds are the size `dldoctor tune` uses)")
    parser.add_argument("--dense", type=int, default=10, help="values per range parameter in the dense grid")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    from dldoctor.core.config import default_config
    from dldoctor.loading.entrypoint import load_target

    args.trials = args.trials or int(default_config()["tune"]["trials"])
    results = []
    for path in sorted((REPO / "examples" / "tuning").glob("*.py")):
        if args.k not in path.name:
            continue
        if load_target(str(path)).spec.search_space is None:
            continue
        result = run_example(path, args.seeds, args.trials, args.dense)
        results.append(result)
        print(f"\n{result['example']}: dense grid of {result['dense_grid_size']} -> best accuracy "
              f"{result['dense_grid_best_accuracy']:.4f}, target {result['target_accuracy']:.4f}; range test "
              f"{result['range_test_steps']} steps = {result['range_test_trial_equivalents']:.2f} trials "
              f"({result['seconds']:.0f} s)")
        for method, m in result["methods"].items():
            print(f"  {method:<15} trials-to-target mean {m['mean']:5.1f}  median {m['median']:4.1f}  "
                  f"censored {m['censored']}/{args.seeds}  ratio to random {result['ratios_to_random'][method]:.2f}"
                  f"  {m['trials_to_target']}")
    if results:
        ratios = [r["ratios_to_random"]["coarse-to-fine"] for r in results]
        print(f"\ncoarse-to-fine / random, mean trials-to-target: {', '.join(f'{x:.2f}' for x in ratios)} "
              f"(geometric mean {math.exp(statistics.fmean(math.log(x) for x in ratios)):.2f}; target <= 0.5)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
