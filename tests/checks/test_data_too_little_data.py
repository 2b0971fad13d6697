"""too-little-data: few samples for the model's size, ranked as the root of an over-fitting gap."""

from dldoctor.checks.data.too_little_data import measured_gap
from dldoctor.core.config import load_config
from dldoctor.core.finding import Finding
from dldoctor.core.ranking import rank
from dldoctor.probes.training.short import Budget, EpochRecord, SplitScore, TrainingRun
from tests.checks.data_cases import blobs, data_findings

WIDE = "nn.Sequential(nn.Linear(8, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))"
VAL = "Xv, yv = X, y\n"


def test_few_samples_per_class_and_a_big_model(make_project):
    # Overlapping classes: the big model cannot generalise from 24 samples, and the short
    # run does not overrule the parameter rule.
    data = blobs(24, 8, 3, spread=8.0) + blobs(300, 8, 3, spread=8.0, seed=1, name="v")
    [finding], _ = data_findings(make_project, data, "too-little-data", model=WIDE)
    assert finding.severity.value == "warning"
    assert finding.metrics["train_samples"] == 24 and finding.metrics["parameters"] > 260_000
    assert "training samples" in finding.title and "parameters per training sample" in finding.title
    assert finding.confidence >= 0.7


def test_enough_data_for_a_small_model_is_silent(make_project):
    data = blobs(3000, 8, 3) + blobs(600, 8, 3, seed=1, name="v")
    found, _ = data_findings(make_project, data, "too-little-data")
    assert found == []


def test_a_small_validation_set_is_a_note(make_project):
    data = blobs(3000, 8, 3) + blobs(40, 8, 3, seed=1, name="v")
    [finding], _ = data_findings(make_project, data, "too-little-data")
    assert finding.severity.value == "info" and "val set has only 40 samples" in finding.title
    assert any("+-0.15" in e for e in finding.evidence)


def test_lazy_layers_are_counted(make_project):
    model = "nn.Sequential(nn.LazyLinear(512), nn.ReLU(), nn.LazyLinear(3))"
    [finding], _ = data_findings(make_project, blobs(30, 8, 3) + VAL, "too-little-data", model=model)
    assert finding.metrics["parameters"] == 8 * 512 + 512 + 512 * 3 + 3


def test_too_little_data_explains_the_overfitting_it_causes():
    found = [Finding("overfitting", "warning", 0.8, "variance", stage="evaluate"),
             Finding("too-little-data", "warning", 0.65, "few samples", stage="data")]
    ranked = {f.id: f for f in rank(found)}
    assert ranked["too-little-data"].rank == 1
    assert ranked["overfitting"].explained_by == "too-little-data"


def test_a_big_model_that_generalises_is_only_a_note(make_project):
    # 200 samples of separable classes, 1344 parameters per sample: the rule of thumb warns,
    # the short run measures training error 0 and a validation error as low.
    data = blobs(200, 8, 3) + blobs(200, 8, 3, seed=1, name="v")
    [finding], _ = data_findings(make_project, data, "too-little-data", model=WIDE)
    assert finding.severity.value == "info" and finding.metrics["parameters_per_sample"] > 1000
    assert finding.metrics["short_run_generalises"] is True
    assert any("measured: after dldoctor's short training run" in e and "it generalises" in e
               for e in finding.evidence)


CFG = load_config().section("too_little_data")


def run_of(train_errors, val_errors, losses, n_train=120, n_val=60):
    epochs = tuple(EpochRecord(i + 1, 10 * (i + 1), 1.0, SplitScore(loss, tr, n_train), SplitScore(loss, va, n_val),
                               None)
                   for i, (tr, va, loss) in enumerate(zip(train_errors, val_errors, losses)))
    return TrainingRun(epochs=epochs, stopped_by="epochs", error_name="1 - accuracy", parameters=10**6,
                       budget=Budget(5, 800, 30.0))


def test_the_parameter_rule_yields_only_to_a_finished_run_with_an_ordinary_gap():
    # Fitted (training error 0), validation error 0.05 on 60 samples: within 2 standard errors.
    generalises, why = measured_gap(run_of([0.1, 0.0, 0.0], [0.1, 0.05, 0.05], [0.5, 0.05, 0.02]), CFG)
    assert generalises and "ordinary for these sizes" in why
    # Fitted, but validation error 0.4: far beyond the noise of 60 samples.
    generalises, why = measured_gap(run_of([0.1, 0.0, 0.0], [0.5, 0.4, 0.4], [0.5, 0.05, 0.02]), CFG)
    assert not generalises and "memorises" in why
    # Not fitted (training error 0.03, loss still falling fast): the small gap says nothing yet.
    assert measured_gap(run_of([0.05, 0.04, 0.033], [0.07, 0.06, 0.04], [0.2, 0.16, 0.12]), CFG) is None
    # A loss that levelled off after 30 steps at training error 0.3 has not started fitting.
    assert measured_gap(run_of([0.4, 0.3, 0.3], [0.4, 0.32, 0.31], [1.0, 0.9, 0.9]), CFG) is None
