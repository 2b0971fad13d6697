"""The curve reader on synthetic curves of every shape."""

import math

import pytest

from dldoctor.core.config import load_config
from dldoctor.readings.curves import convergence_target, read_curve

CFG = dict(load_config().section("overfit"))


def decay(start, rate, n=200, floor=0.0):
    return [floor + (start - floor) * math.exp(-rate * i) for i in range(n)]


def noisy(values, amp, seed=0):
    import random
    rng = random.Random(seed)
    return [v * (1 + amp * (rng.random() - 0.5)) for v in values]


CURVES = {
    "converged": decay(2.3, 0.05),
    "converged-noisy-adam": noisy(decay(2.3, 0.03), 0.3),
    "decreasing": decay(2.3, 0.01, floor=0.6),
    "plateau": noisy([2.30] * 200, 0.02),
    "stalled": decay(1.06, 0.05, floor=0.93),
    "goes-up": [2.3 + 0.01 * i for i in range(200)],
    "explodes-nan": [2.3, 3.0, 9.0, float("nan")],
    "explodes-large": [2.3 * (1.05 ** i) for i in range(100)],
    "oscillates": [2.3] + [1.0 + (1.0 if i % 2 else 0.0) for i in range(199)],
    "falls-below-zero": [-2.3 - 0.25 * i for i in range(200)],
}
EXPECTED = {
    "converged": "converged", "converged-noisy-adam": "converged", "decreasing": "decreasing",
    "plateau": "plateau", "stalled": "plateau", "goes-up": "goes-up",
    "explodes-nan": "explodes", "explodes-large": "explodes",
    "oscillates": "oscillates", "falls-below-zero": "falls-below-zero",
}


@pytest.mark.parametrize("name", sorted(CURVES))
def test_each_shape_is_read(name):
    assert read_curve(CURVES[name], CFG).shape == EXPECTED[name]


def test_nan_step_and_convergence_step_are_reported():
    assert read_curve(CURVES["explodes-nan"], CFG).first_nonfinite == 3
    r = read_curve(CURVES["converged"], CFG)
    assert r.converged_at == next(i for i, x in enumerate(CURVES["converged"]) if x <= 0.115)
    assert "converged at step" in r.describe()


def test_target_is_relative_with_an_absolute_floor():
    assert convergence_target(2.3, CFG) == pytest.approx(0.115)
    assert convergence_target(0.1, CFG) == pytest.approx(0.01)
    assert convergence_target(-1.0, CFG) == -math.inf


def test_thresholds_come_from_config():
    strict = dict(CFG, plateau_rel=0.9)
    assert read_curve(CURVES["decreasing"], strict).shape == "plateau"
