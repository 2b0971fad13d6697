"""The trend test on synthetic memory series: flat, warm-up then flat, linear and noisy growth."""

import numpy as np
import pytest

from dldoctor.probes.resources.trend import theil_sen, trend
from dldoctor.readings.leaks import detect

CFG = {"warmup_fraction": 0.2, "warmup_min_steps": 5, "min_steps": 15, "confidence": 0.99,
       "persist_ratio": 0.5, "min_bytes_per_step": 1024}
BASE = 120e6  # a process's in-use bytes


def steps(n=200):
    return np.arange(n, dtype=float)


def test_flat_series_has_no_trend():
    t = trend(np.full(200, BASE))
    assert t.whole.slope == 0 and t.whole.low <= 0 <= t.whole.high
    assert detect(np.full(200, BASE), CFG) is None


def test_warm_up_then_flat_is_not_a_leak():
    # optimiser state and allocator blocks arrive during the first steps, then nothing
    series = BASE + np.minimum(steps(), 8) * 400_000
    t = trend(series)
    assert t.start >= 8 and t.whole.slope == 0
    assert detect(series, CFG) is None


def test_linear_growth_is_measured_exactly():
    series = BASE + 18_000 * steps()
    t = trend(series)
    assert t.whole.slope == pytest.approx(18_000)
    assert t.whole.low == pytest.approx(18_000) and t.tail.slope == pytest.approx(18_000)
    assert t.growth == pytest.approx(18_000 * (t.points - 1))
    assert detect(series, CFG) is t or detect(series, CFG) == t


def test_noisy_growth_is_found_with_an_interval_that_holds_the_true_slope():
    rng = np.random.default_rng(0)
    series = BASE + 6_000 * steps() + rng.normal(0, 60_000, 200)  # noise 10x the per-step growth
    t = trend(series)
    assert t.whole.low < 6_000 < t.whole.high
    assert t.whole.low > 0
    assert detect(series, CFG) is not None


def test_noise_alone_has_an_interval_around_zero():
    rng = np.random.default_rng(1)
    series = BASE + rng.normal(0, 50_000, 200)
    t = trend(series)
    assert t.whole.low < 0 < t.whole.high
    assert detect(series, CFG) is None


def test_small_steady_growth_below_the_floor_is_not_a_leak():
    # the run's own per-step records: a few hundred bytes a step, perfectly regular
    series = BASE + 200 * steps()
    assert trend(series).whole.low == pytest.approx(200)
    assert detect(series, CFG) is None
    assert detect(BASE + 1_500 * steps(), CFG, own_bytes_per_step=600) is None  # floor + the run's own records
    assert detect(BASE + 1_700 * steps(), CFG, own_bytes_per_step=600) is not None


def test_a_cache_that_fills_then_stops_is_not_a_leak():
    # grows for the first epoch (80 steps), then every item is cached
    series = BASE + np.minimum(steps(), 80) * 20_000
    t = trend(series)
    assert t.tail.slope == 0
    assert detect(series, CFG) is None


def test_one_late_jump_is_not_a_leak():
    # one more block allocated at some step (a larger batch at an epoch's end): a step, not a slope
    for at in (60, 100, 150):
        series = BASE + (steps() >= at) * 2_000_000.0
        assert detect(series, CFG) is None, at


def test_sawtooth_from_periodic_collection_is_not_a_leak():
    # garbage that a periodic collection frees: up for 10 steps, back down
    series = BASE + (steps() % 10) * 30_000
    assert detect(series, CFG) is None


def test_growth_that_accelerates_is_a_leak():
    series = BASE + 50 * steps() ** 2
    t = detect(series, CFG)
    assert t is not None and t.tail.slope > t.whole.slope


def test_too_short_series_is_not_judged():
    assert trend(BASE + 10_000 * np.arange(19), min_points=15) is None  # 19 - 5 warm-up = 14 < 15
    assert trend(BASE + 10_000 * np.arange(20), min_points=15) is not None
    assert detect(BASE + 10_000 * np.arange(20), CFG) is not None


def test_interval_widens_with_confidence_and_ties_are_handled():
    rng = np.random.default_rng(2)
    y = 1_000 * steps(100) + rng.normal(0, 20_000, 100)
    narrow = theil_sen(steps(100), y, confidence=0.8)
    wide = theil_sen(steps(100), y, confidence=0.999)
    assert wide.low <= narrow.low <= narrow.slope <= narrow.high <= wide.high
    ties = theil_sen(steps(50), np.repeat([0.0, 4096.0], 25))  # two levels, many ties
    assert ties.slope >= 0 and np.isfinite(ties.low)


def test_long_series_are_reduced_to_block_medians():
    series = BASE + 3_000 * steps(5000)
    series[::97] += 5e6  # spikes
    t = trend(series)
    assert t.whole.points <= 400
    assert t.whole.slope == pytest.approx(3_000, rel=0.01)


def test_a_series_read_every_few_steps_gives_the_slope_per_step():
    steps = np.r_[np.arange(64), np.arange(64, 400, 4)]
    t = trend(BASE + 5_000 * steps, steps=steps)
    assert t.whole.slope == pytest.approx(5_000) and t.end == 396
    assert t.start == 80  # warm-up: 20% of the 397 steps, whatever was read
    assert detect(BASE + 5_000 * steps, CFG, steps=steps) is not None
