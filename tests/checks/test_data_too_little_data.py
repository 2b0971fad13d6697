"""too-little-data: few samples for the model's size, ranked as the root of an over-fitting gap."""

from dldoctor.core.finding import Finding
from dldoctor.core.ranking import rank
from tests.checks.data_cases import blobs, data_findings

WIDE = "nn.Sequential(nn.Linear(8, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))"
VAL = "Xv, yv = X, y\n"


def test_few_samples_per_class_and_a_big_model(make_project):
    [finding], _ = data_findings(make_project, blobs(24, 8, 3) + VAL, "too-little-data", model=WIDE)
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
