"""Coarse-to-fine sampling on cheap synthetic objectives (no training)."""

import math
import statistics

import pytest

optuna = pytest.importorskip("optuna")

from dldoctor.tuning.sampler import CoarseToFineSampler, shrink  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
WIDTHS = [4, 8, 16, 32, 64, 128]


def objective(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    width = trial.suggest_categorical("width", WIDTHS)
    act = trial.suggest_categorical("act", ["relu", "tanh", "sigmoid"])
    return (math.log10(lr) + 2.3) ** 2 + 0.3 * (WIDTHS.index(width) - 4) ** 2 + (act != "tanh") * 0.5


def run(sampler, trials=24):
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return study


def test_same_seed_same_trials():
    a = run(CoarseToFineSampler(8, seed=3))
    b = run(CoarseToFineSampler(8, seed=3))
    c = run(CoarseToFineSampler(8, seed=4))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_rounds_shrink_around_the_best_trials():
    ratios = []
    for seed in range(5):
        study = run(CoarseToFineSampler(8, seed=seed))
        logs = [[math.log10(t.params["lr"]) for t in study.trials[r * 8:(r + 1) * 8]] for r in range(3)]
        ratios.append((max(logs[2]) - min(logs[2])) / (max(logs[0]) - min(logs[0])))
        assert all(1e-5 <= t.params["lr"] <= 1e-1 for t in study.trials)
        # a list of names keeps the choices of the top trials (at least two); numbers shrink by position
        assert len({t.params["act"] for t in study.trials[16:]}) >= 2
        assert {t.params["width"] for t in study.trials[16:]} < set(WIDTHS)
    assert statistics.median(ratios) < 0.5


def test_a_focus_draws_part_of_round_zero_inside_it_and_the_rest_everywhere():
    study = run(CoarseToFineSampler(8, seed=0, offset=1, focus={"lr": (1e-3, 1e-2)}), trials=9)
    inside = [1e-3 <= t.params["lr"] <= 1e-2 for t in study.trials[1:]]
    assert sum(inside[:4]) == 4  # the focused half
    assert sum(inside[4:]) <= 2  # the other half covers the whole range (1 decade of 4)


def test_round_zero_is_stratified():
    study = run(CoarseToFineSampler(8, seed=1), trials=8)
    cells = sorted(int((math.log10(t.params["lr"]) + 5) / 4 * 8) for t in study.trials)
    assert cells == list(range(8))  # one trial per eighth of the range


def test_shrink_keeps_a_minimum_width_and_stays_inside():
    assert shrink([0.5], [0.5], (0.0, 1.0), (0.0, 1.0), pad=0.5, min_width=0.25) == (0.375, 0.625)
    lo, hi = shrink([0.0], [0.1], (0.0, 1.0), (0.0, 1.0), pad=0.5, min_width=0.5)
    assert (lo, hi) == (0.0, 0.5)


def test_coarse_to_fine_beats_plain_random_search_on_a_smooth_objective():
    c2f = [run(CoarseToFineSampler(8, seed=s)).best_value for s in range(10)]
    rnd = [run(optuna.samplers.RandomSampler(seed=s)).best_value for s in range(10)]
    assert statistics.median(c2f) < statistics.median(rnd)
