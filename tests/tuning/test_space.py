"""The search space: checked against the spec function's signature, with errors that say what to write."""

import pytest

from dldoctor.core.errors import EntrypointError
from dldoctor.tuning.space import OPTIMIZER, Param, default_space, parse_space, split_values


def spec(lr=1e-3, width=64, activation="relu"):
    return {}


def spec_kwargs(lr=1e-3, **rest):
    return {}


def test_ranges_and_lists_become_parameters_with_their_defaults():
    params = parse_space({"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "width": [32, 64, 128],
                          "activation": ["relu", "gelu"]}, spec)
    lr, width, act = params
    assert (lr.kind, lr.log, lr.default) == ("float", True, 1e-3)
    assert width.kind == "categorical" and width.ordinal and width.default == 64
    assert act.kind == "categorical" and not act.ordinal
    assert lr.contains(1e-3) and not lr.contains(1.0) and width.contains(64) and not width.contains(48)


def test_integer_ranges():
    [p] = parse_space({"width": {"low": 8, "high": 128, "int": True, "log": True}}, spec)
    assert p.kind == "int" and p.low == 8 and p.high == 128 and p.contains(64) and not p.contains(64.5)
    assert p.grid(3) == [8, 32, 128]


@pytest.mark.parametrize("space,words", [
    ({"depth": [1, 2]}, ["'depth'", "not a keyword argument of spec()", "Its keyword arguments: lr, width"]),
    ({"lr": {"low": 1e-1, "high": 1e-5}}, ["low must be below high"]),
    ({"lr": {"low": 0.0, "high": 1e-1, "log": True}}, ["log range needs low > 0"]),
    ({"lr": {"low": 1e-5, "hgih": 1e-1}}, ["unknown key 'hgih'"]),
    ({"width": {"low": 8.5, "high": 64, "int": True}}, ["whole-number bounds"]),
    ({"width": []}, ["empty list"]),
    ({"width": [object()]}, ["choices must be numbers, strings"]),
    ({"width": [32, 32]}, ["lists a choice twice"]),
    ({"width": 64}, ["must be a list of choices or a {'low', 'high'} range"]),
    ({"lr": {"low": "a", "high": 1}}, ["finite numbers"]),
])
def test_bad_spaces_name_the_key_and_the_fix(space, words):
    with pytest.raises(EntrypointError) as err:
        parse_space(space, spec)
    text = err.value.message + "\n" + err.value.hint
    for w in words:
        assert w in text


def test_a_spec_with_kwargs_accepts_any_name():
    [p] = parse_space({"depth": [1, 2, 3]}, spec_kwargs)
    assert p.name == "depth" and not p.has_default


def test_no_space_is_no_parameters():
    assert parse_space(None, spec) == ()


def test_default_space_searches_lr_and_weight_decay_around_their_values():
    lr, wd = default_space({"lr": 1e-3, "weight_decay": 1e-4}, None, 100.0)
    assert (lr.name, lr.target, lr.low, lr.high, lr.log) == ("optimizer.lr", OPTIMIZER, 1e-5, 1e-1, True)
    assert (wd.name, wd.low, wd.high) == ("optimizer.weight_decay", 1e-6, 1e-2)
    [lr] = default_space({"lr": 1e-3, "weight_decay": 0.0}, "lr", 100.0, suggestion=5.0)
    assert lr.name == "lr" and lr.target == "spec" and lr.high == 50.0  # reaches 10x around the suggestion


def test_split_values_separates_spec_arguments_from_optimizer_settings():
    params = (Param("width", "categorical", choices=(8, 16)), Param("optimizer.lr", "float", 1e-4, 1.0,
                                                                    target=OPTIMIZER))
    assert split_values(params, {"width": 8, "optimizer.lr": 0.1}) == ({"width": 8}, {"lr": 0.1})
