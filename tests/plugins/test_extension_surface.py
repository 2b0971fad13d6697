"""The extension surface: typed keys, declared dependencies between checks, one judgement type,
merged findings that keep their checks as a tuple."""

from __future__ import annotations

import types

import pytest

from dldoctor.api import Check, Finding, Judgement, Key, Severity, Stage, Store


# -- typed keys -----------------------------------------------------------------------
def test_a_key_equals_itself_and_its_own_parametrised_forms_only():
    fraction: Key[float] = Key("training:fraction", "a run on a fraction of the data")
    assert fraction.at(0.5) == fraction.at(0.5) and hash(fraction.at(0.5)) == hash(fraction.at(0.5))
    assert fraction.at(0.5) != fraction.at(0.25) and fraction.at(0.5) != fraction
    assert fraction.at(0.5).name == "training:fraction:0.5"  # the name the string key had
    assert fraction.at("a").at(3).name == "training:fraction:a:3" and fraction.at("a").at(3) == fraction.at("a", 3)
    # Same name, another declaration (a plugin's): never the same value.
    assert Key("training:fraction") != fraction


def test_a_store_is_typed_by_key_and_gives_names_for_tools():
    store = Store()
    task: Key[str] = Key("task")
    classes: Key[int | None] = Key("num_classes")
    store[task] = "classification"
    assert store[task] == "classification" and task in store and classes not in store
    assert store.get(classes) is None and store.get(classes, 3) == 3
    store[classes] = 10
    assert store.by_name() == {"task": "classification", "num_classes": 10}  # insertion order kept
    assert list(store) == [task, classes] and len(store) == 2


def test_measure_memoises_by_key_and_rejects_string_keys():
    from dldoctor.core.context import Context

    ctx = types.SimpleNamespace(measurements=Store(), _failed={})
    key: Key[list[int]] = Key("my_plugin:calls")
    calls = []
    first = Context.measure(ctx, key, lambda: calls.append(1) or [1])
    assert Context.measure(ctx, key, lambda: calls.append(2) or [2]) is first and calls == [1]
    with pytest.raises(TypeError, match="not str"):
        Context.measure(ctx, "my_plugin:calls", lambda: [3])


def test_every_built_in_measurement_key_is_declared_once_with_a_unique_name():
    from dldoctor.api import keys

    declared = {name: value for name, value in vars(keys).items() if isinstance(value, Key)}
    measurement_names = [k.name for n, k in declared.items() if not n.endswith("_REPORT")]
    assert len(measurement_names) == len(set(measurement_names)), measurement_names
    assert all(k.doc for k in declared.values())
    assert set(keys.__all__) >= set(declared)


# -- declared dependencies ----------------------------------------------------------------
def _check(name: str, order: int = 100, after: tuple[str, ...] = (), stage: Stage = Stage.OVERFIT) -> type[Check]:
    return type(name.title(), (Check,), {"name": name, "order": order, "after": after, "stage": stage})


def test_a_check_runs_after_those_it_declares_whatever_its_order():
    from dldoctor.core.registry import run_order

    reader = _check("reader", order=5, after=("writer",))
    writer = _check("writer", order=50)
    other = _check("other", order=10)
    early = _check("early", order=200, stage=Stage.RUN)
    assert [c.name for c in run_order([reader, writer, other, early])] == ["early", "other", "writer", "reader"]
    # Without dependencies the order is (stage, order, name), as before.
    assert [c.name for c in run_order([other, writer, early])] == ["early", "other", "writer"]


def test_unmeetable_dependencies_are_registration_errors():
    from dldoctor.core.registry import DependencyError, run_order

    with pytest.raises(DependencyError, match="not a registered check"):
        run_order([_check("lonely", after=("nobody",))])
    with pytest.raises(DependencyError, match="later"):
        run_order([_check("first", stage=Stage.RUN, after=("second",)), _check("second")])
    with pytest.raises(DependencyError, match="cycle"):
        run_order([_check("a", after=("b",)), _check("b", after=("a",))])
    # A run of some checks only orders what it has.
    assert [c.name for c in run_order([_check("lonely", after=("nobody",))], strict=False)] == ["lonely"]


def test_after_is_validated_on_the_class():
    with pytest.raises(TypeError, match="'after'"):
        _check("stringy", after="other")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'after'"):
        _check("selfish", after=("selfish",))


def test_label_signal_runs_after_overfit_batch_because_it_says_so():
    from dldoctor.core.registry import discover

    ordered = [r.check.name for r in discover(plugins=False)[0]]
    assert ordered.index("overfit-batch") < ordered.index("label-signal")
    label_signal = next(r.check for r in discover(plugins=False)[0] if r.check.name == "label-signal")
    assert label_signal.after == ("overfit-batch",)


# -- one judgement type ------------------------------------------------------------------------
class _Judge(Check):
    name = "judge-for-test"
    emits = ("lr-too-high", "lr-too-low")


def test_a_judgement_becomes_the_same_finding_as_finding_would_build():
    judgement = Judgement("lr-too-high", Severity.ERROR, 0.8, evidence=("the loss explodes",),
                          metrics={"lr": 3.0}, location="optimizer", case="explodes")
    check = _Judge()
    assert check.judged(judgement) == check.finding("lr-too-high", Severity.ERROR, 0.8, evidence=["the loss explodes"],
                                                    metrics={"lr": 3.0}, location="optimizer")
    untitled = Judgement(None, Severity.WARNING, 0.5)
    assert check.judged(untitled, "lr-too-low").id == "lr-too-low"
    with pytest.raises(ValueError, match="diagnosis ID"):
        check.judged(untitled)


# -- merged findings ------------------------------------------------------------------------------
def test_merged_findings_keep_their_checks_as_a_tuple_and_the_json_as_it_was():
    from dldoctor.core.ranking import rank

    a = Finding("lr-too-high", Severity.ERROR, 0.9, "too high", check="overfit-batch", evidence=("x",))
    b = Finding("lr-too-high", Severity.WARNING, 0.5, "too high too", check="lr-range", evidence=("y",))
    assert a.checks == ("overfit-batch",)
    [merged] = rank([a, b])
    assert merged.checks == ("lr-range", "overfit-batch") and merged.check == "lr-range, overfit-batch"
    assert merged.to_dict()["check"] == "lr-range, overfit-batch" and "checks" not in merged.to_dict()
    import dataclasses

    assert dataclasses.replace(merged, check="other").checks == ("other",)
