"""class-imbalance: rare classes in what the model trains on are reported with weights computed from the counts."""

import pytest

from tests.checks.data_cases import blobs, data_findings

BINARY = "nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))"


def imbalanced(share: float, n: int = 2000) -> str:
    """Binary labels with ``share`` positives, and a validation set like it."""
    return (f"X = torch.randn({n}, 8, generator=g)\ny = (torch.rand({n}, generator=g) < {share}).long()\n"
            f"Xv = torch.randn(400, 8, generator=g)\nyv = (torch.rand(400, generator=g) < {share}).long()\n")


def test_a_rare_class_is_a_warning_with_loss_weights(make_project):
    [finding], _ = data_findings(make_project, imbalanced(0.04), "class-imbalance", k=2)
    assert finding.severity.value == "warning" and finding.location == "data: train_loader"
    assert finding.metrics["imbalance_ratio"] > 15 and finding.metrics["minority_class"] == 1
    assert "nn.CrossEntropyLoss(weight=torch.tensor([" in finding.fixes[0]
    assert any("always predicting class 0 scores accuracy 0.9" in e for e in finding.evidence)


def test_binary_logit_loss_gets_pos_weight(make_project):
    data = imbalanced(0.04).replace(".long()", ".float()")
    [finding], _ = data_findings(make_project, data, "class-imbalance", model=BINARY,
                                 loss="nn.BCEWithLogitsLoss()", extra='"task": "classification",')
    ratio = finding.metrics["imbalance_ratio"]
    assert f"pos_weight=torch.tensor([{ratio:.3g}])" in finding.fixes[0]


@pytest.mark.parametrize("share", [0.4, 0.5])
def test_mild_or_no_imbalance_is_silent(make_project, share):
    found, _ = data_findings(make_project, imbalanced(share), "class-imbalance", k=2)
    assert found == []


def test_a_sampler_that_rebalances_passes(make_project):
    data = imbalanced(0.04) + "w = 1.0 / torch.bincount(y).float()[y]\n"
    train = ("DataLoader(TensorDataset(X, y), batch_size=64, sampler=WeightedRandomSampler(w, len(w), "
             "generator=torch.Generator().manual_seed(0)))")
    found, _ = data_findings(make_project, data, "class-imbalance", k=2, train=train)
    assert found == []


def test_a_weighted_loss_turns_it_into_a_note(make_project):
    [finding], _ = data_findings(make_project, imbalanced(0.04), "class-imbalance", k=2,
                                 loss="nn.CrossEntropyLoss(weight=torch.tensor([1.0, 20.0]))")
    assert finding.severity.value == "info" and any("already has weight" in e for e in finding.evidence)


def test_a_declared_class_that_never_occurs(make_project):
    data = blobs(600, 8, 3) + "Xv, yv = X[:100], y[:100]\n"
    [finding], _ = data_findings(make_project, data, "class-imbalance", k=4, extra='"num_classes": 4,')
    assert finding.severity.value == "warning" and finding.metrics["missing_classes"] == "3"


def test_unlabelled_rows_are_left_out(make_project):
    data = imbalanced(0.5) + "y[:300] = -1\n"
    found, diagnosis = data_findings(make_project, data, "class-imbalance", k=2,
                                     loss="nn.CrossEntropyLoss(ignore_index=-1)")
    assert found == [] and all(c.status.value != "errored" for c in diagnosis.checks)
