import pytest

from dldoctor.core.config import load_config
from dldoctor.readings.decomposition import Errors, RemedyContext, decompose, judge, remedies

CFG = load_config().section("bias_variance")


def test_arithmetic_with_every_split():
    d = decompose(Errors(train=0.08, val=0.15, test=0.21, train_val=0.09, irreducible=0.02))
    assert d.bias == pytest.approx(0.06)
    assert d.variance == pytest.approx(0.01)
    assert d.shift == pytest.approx(0.06)
    assert d.val_overfit == pytest.approx(0.06)
    assert [name for name, _ in d.components()] == ["bias", "variance", "distribution shift",
                                                     "validation over-fitting"]


def test_without_train_val_variance_is_val_minus_train():
    d = decompose(Errors(train=0.05, val=0.20))
    assert d.variance == pytest.approx(0.15) and d.shift is None and d.val_overfit is None
    assert d.largest()[0] == "variance"


def test_largest_component_is_the_warning_and_small_ones_are_silent():
    items = judge(decompose(Errors(train=0.30, val=0.33, irreducible=0.0)), CFG)
    assert [(i["id"], i["severity"]) for i in items] == [("underfitting", "warning"), ("overfitting", "info")]
    assert judge(decompose(Errors(train=0.01, val=0.02)), CFG) == []


def test_a_gap_within_sampling_noise_is_not_reported():
    small = Errors(train=0.03, val=0.08, samples=(1000, 40, None, None))  # SE of val error ~0.043
    assert all(i["id"] != "overfitting" for i in judge(decompose(small), CFG))
    large = Errors(train=0.03, val=0.08, samples=(10000, 10000, None, None))
    assert judge(decompose(large), CFG)[0]["id"] == "overfitting"


def test_remedies_follow_the_methods_priority():
    bias = remedies("bias", RemedyContext(parameters=12_000))
    assert bias[0].startswith("Make the model bigger") and "12,000 parameters; try 4x wider" in bias[0]
    assert bias[1].startswith("Reduce regularisation")
    assert bias.index(next(r for r in bias if r.startswith("Tune"))) > 2
    variance = remedies("variance")
    assert variance[0].startswith("Add more training data")
    assert variance.index(next(r for r in variance if "regularisation" in r)) > 0
    flat = remedies("variance", RemedyContext(more_data_helps=False))
    assert "regularisation" in flat[0] and flat[3].startswith("Add more training data")
    assert remedies("variance", RemedyContext(best_epoch=8))[7] == \
        "Stop early: validation error is lowest at epoch 8."
    with pytest.raises(ValueError, match="unknown component 'luck'"):
        remedies("luck")


def test_negative_and_non_finite_errors_are_rejected():
    with pytest.raises(ValueError, match="must not be negative"):
        Errors(train=-0.1, val=0.2)
    with pytest.raises(ValueError, match="must be a finite number"):
        Errors(train=float("nan"), val=0.2)
