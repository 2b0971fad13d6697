import random

from dldoctor.core.finding import Finding
from dldoctor.core.ranking import rank


def f(id, severity="error", confidence=0.9, stage="run", check="c", evidence=()):
    return Finding(id=id, severity=severity, confidence=confidence, title=id, check=check, stage=stage,
                   evidence=evidence)


FINDINGS = [
    f("lr-too-low", "warning", 0.7, "overfit"),
    f("loss-input-probabilities", "error", 0.9, "run"),
    f("underfitting", "warning", 0.6, "evaluate"),
    f("class-imbalance", "info", 0.9, "data"),
    f("shape-mismatch", "error", 0.6, "run"),
    f("overfitting", "warning", 0.8, "evaluate"),
]


def test_shuffling_the_input_never_changes_the_output():
    expected = rank(FINDINGS)
    rng = random.Random(0)
    for _ in range(20):
        shuffled = FINDINGS[:]
        rng.shuffle(shuffled)
        assert rank(shuffled) == expected


def test_ranks_are_consecutive_from_one():
    assert [x.rank for x in rank(FINDINGS)] == list(range(1, len(FINDINGS) + 1))


def test_severity_then_stage_then_confidence():
    ranked = rank([f("a-warn", "warning", 0.99, "run"), f("b-err-late", "error", 0.5, "evaluate"),
                   f("c-err-early", "error", 0.5, "run"), f("d-err-early-sure", "error", 0.9, "run")],
                  explains={})
    assert [x.id for x in ranked] == ["d-err-early-sure", "c-err-early", "b-err-late", "a-warn"]


def test_root_cause_explains_its_symptoms_and_they_follow_it():
    ranked = rank(FINDINGS)
    by_id = {x.id: x for x in ranked}
    assert by_id["lr-too-low"].explained_by == "loss-input-probabilities"
    assert by_id["underfitting"].explained_by is not None
    assert by_id["loss-input-probabilities"].explained_by is None
    standing = [x.rank for x in ranked if x.explained_by is None]
    explained = [x.rank for x in ranked if x.explained_by is not None]
    assert max(standing) < min(explained)


def test_an_info_finding_explains_nothing():
    ranked = rank([f("lr-too-high", "info", 0.9), f("exploding-gradients", "warning", 0.9)])
    assert all(x.explained_by is None for x in ranked)


def test_same_id_from_two_checks_merges_evidence_and_keeps_the_strongest():
    ranked = rank([f("lr-too-high", "warning", 0.6, check="a", evidence=("x",)),
                   f("lr-too-high", "error", 0.8, check="b", evidence=("y",))])
    assert len(ranked) == 1
    assert ranked[0].severity.value == "error"
    assert ranked[0].evidence == ("y", "x")
    assert ranked[0].check == "a, b"


def test_transitive_explanation_defers_to_the_deepest_root():
    explains = {"root": ["middle"], "middle": ["leaf"]}
    ranked = rank([f("leaf", "warning"), f("middle", "warning"), f("root", "error")], explains=explains)
    by_id = {x.id: x for x in ranked}
    assert by_id["leaf"].explained_by == "root"
    assert by_id["middle"].explained_by == "root"


def confirmed(id, severity="warning", stage="evaluate", confidence=0.6):
    return Finding(id=id, severity=severity, confidence=confidence, title=id, check="x", stage=stage,
                   metrics={"confirmed_by": "the learning rate 10x higher"})


def test_an_experiment_confirmed_cause_ranks_before_an_unconfirmed_one_of_its_severity():
    ranked = rank([f("wrong-mode", "warning", 0.9, "run"), confirmed("lr-too-low")])
    assert [x.id for x in ranked] == ["lr-too-low", "wrong-mode"]
    # Severity still comes first: an unconfirmed error outranks a confirmed warning.
    ranked = rank([f("loss-broadcast", "error", 0.6, "run"), confirmed("lr-too-low")])
    assert ranked[0].id == "loss-broadcast"


def test_a_data_level_finding_explains_a_confirmed_mechanism_only_when_confirmed_itself():
    measured = f("input-not-normalized", "warning", 0.8, "run")
    ranked = rank([measured, confirmed("lr-too-low")])
    assert [(x.id, x.explained_by) for x in ranked] == [("lr-too-low", None), ("input-not-normalized", None)]
    shown = confirmed("input-not-normalized", stage="run")
    ranked = rank([shown, confirmed("lr-too-low")])
    assert [(x.id, x.explained_by) for x in ranked] == [("input-not-normalized", None),
                                                      ("lr-too-low", "input-not-normalized")]
    # An unconfirmed mechanism is still explained by the data-level finding, as before.
    ranked = rank([measured, f("lr-too-low", "warning", 0.7, "overfit")])
    assert [(x.id, x.explained_by) for x in ranked] == [("input-not-normalized", None),
                                                      ("lr-too-low", "input-not-normalized")]
