"""Reading a range test: a suggestion with a confidence, or "no clear minimum" (synthetic curves)."""

import math

import numpy as np
import pytest

from dldoctor.core.config import default_config
from dldoctor.readings.lr import CLEAR, NONE, WEAK, LrReading, moving_median, read_sweep, verdict
from dldoctor.tuning.search import lr_focus
from dldoctor.tuning.space import Param

CFG = default_config()["lr_finder"]


def sweep(curve, steps=100, low=1e-7, high=10.0, noise=0.02, seed=0):
    """Learning rates of an exponential sweep and ``curve(log10 lr)`` plus Gaussian noise."""
    lrs = np.geomspace(low, high, steps)
    rng = np.random.default_rng(seed)
    return list(lrs), [curve(math.log10(lr)) + noise * rng.standard_normal() for lr in lrs]


def valley(x, start=-3.0, bottom=-1.0, rise_at=-0.5):
    """2.3 until ``start``, falling linearly (in log lr) to 0.2 at ``bottom``, flat, then climbing steeply."""
    if x < start:
        return 2.3
    if x < bottom:
        return 2.3 - 2.1 * (x - start) / (bottom - start)
    return 0.2 + (0.0 if x < rise_at else 8.0 * (x - rise_at))


def test_a_clear_valley_gives_the_middle_of_the_descent():
    lrs, losses = sweep(valley)
    reading = read_sweep(lrs, losses, "end", CFG)
    assert reading.status == CLEAR and reading.confidence > 0.9
    assert reading.suggestion == pytest.approx(1e-2, rel=0.3)  # half-way down: log10 lr = -2
    assert 10 ** -3.3 < reading.descent_low < 10 ** -2.5 and 10 ** -1.3 < reading.descent_high < 10 ** -0.4
    assert reading.drop_fraction > 0.85


def test_a_flat_noisy_curve_has_no_clear_minimum():
    lrs, losses = sweep(lambda x: 0.05, noise=0.02)
    reading = read_sweep(lrs, losses, "diverged", CFG)
    assert reading.status == NONE and reading.suggestion is None and reading.confidence == 0.0
    assert "never falls meaningfully" in reading.reasons[0]


def test_a_curve_that_falls_and_stays_flat_to_the_top_has_no_minimum_in_range():
    lrs, losses = sweep(lambda x: valley(x, rise_at=99))
    reading = read_sweep(lrs, losses, "end", CFG)
    assert reading.status == NONE and reading.suggestion is None
    assert "does not rise again" in reading.reasons[0]
    assert reading.descent_low is not None  # where it falls is still reported
    # ... and where it reaches its floor: 90% of the drop, at log10 lr = -3 + 0.9 * 2 = -1.2
    assert 10 ** -1.5 < reading.floor_low < 10 ** -0.9


def test_the_range_test_focuses_round_zero_on_its_descent_or_on_its_floor():
    lr = Param("lr", "float", 1e-4, 1.0, log=True)
    width = Param("width", "int", 8, 128, log=True)
    lrs, losses = sweep(valley)
    clear = read_sweep(lrs, losses, "end", CFG)
    low, high = lr_focus((lr, width), "lr", clear, 3.0)["lr"]
    assert low == pytest.approx(clear.descent_low / 3) and high == pytest.approx(min(1.0, clear.descent_high * 3))
    lrs, losses = sweep(lambda x: valley(x, rise_at=99))
    flat = read_sweep(lrs, losses, "end", CFG)
    # No minimum: no rate above the floor limits training, so the focus runs from it to the top.
    assert lr_focus((lr, width), "lr", flat, 3.0) == {"lr": (pytest.approx(flat.floor_low / 3), 1.0)}
    lrs, losses = sweep(lambda x: 0.05, noise=0.02)
    assert lr_focus((lr, width), "lr", read_sweep(lrs, losses, "end", CFG), 3.0) == {}  # no descent, no focus
    assert lr_focus((lr, width), "width", clear, 3.0) == {}  # not the learning rate's parameter


def test_divergence_brackets_a_minimum_even_without_a_recorded_rise():
    lrs, losses = sweep(lambda x: valley(x, rise_at=99))
    cut = next(i for i, lr in enumerate(lrs) if lr > 0.3)
    reading = read_sweep(lrs[:cut], losses[:cut] + [float("nan")], "nan", CFG)
    assert reading.status == CLEAR and reading.suggestion == pytest.approx(1e-2, rel=0.3)


def test_a_shallow_descent_is_weak_not_clear():
    lrs, losses = sweep(lambda x: 2.3 - 0.5 * (valley(x) < 2.0) * (2.3 - valley(x)) / 2.1 + (x > -0.5) * 5 * (x + 0.5),
                        noise=0.01)
    reading = read_sweep(lrs, losses, "end", CFG)
    assert reading.status == WEAK and reading.suggestion is not None
    assert 0 < reading.confidence < CFG["confident"]
    assert any("shallow" in r for r in reading.reasons)


def test_too_few_points_cannot_be_read():
    reading = read_sweep([1e-3, 1e-2], [1.0, 0.5], "nan", CFG)
    assert reading.status == NONE and "only 2" in reading.reasons[0]


def test_same_curve_same_reading():
    lrs, losses = sweep(valley, seed=3)
    assert read_sweep(lrs, losses, "end", CFG) == read_sweep(lrs, losses, "end", CFG)


def test_moving_median_ignores_single_spikes():
    assert list(moving_median([1, 1, 9, 1, 1], 1)) == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("spec_lr,expected", [
    (1e-2, None),        # at the suggestion
    (1.5e-3, None),      # 7x below: not 10x
    (1e-5, "too-low"),   # far below the descent
    (3e-4, None),        # 33x below the suggestion but only 4x below where the loss starts to fall
    (0.5, "too-high"),   # beyond the minimum and 50x above
    (0.09, None),        # 9x above
])
def test_verdict_needs_10x_and_the_measured_side(spec_lr, expected):
    reading = LrReading(CLEAR, 1e-2, 0.9, descent_low=1e-3, descent_high=0.1, lr_at_min=0.1)
    assert verdict(reading, spec_lr, 10.0) == expected


def test_no_verdict_without_a_clear_reading():
    weak = LrReading(WEAK, 1e-2, 0.4, descent_low=1e-3, descent_high=0.1, lr_at_min=0.1)
    assert verdict(weak, 1e-6, 10.0) is None
    assert verdict(LrReading(NONE, None, 0.0), 1e-6, 10.0) is None
