"""train-val-leakage: exact and near copies of training samples in held-out splits, with their indices."""

import pytest

from tests.checks.data_cases import blobs, data_findings

SHARED = """
data = TensorDataset(X, y)
{indices}
"""


def test_exact_copies_are_counted_with_their_indices(make_project):
    data = blobs(1000, 8, 3) + blobs(300, 8, 3, seed=1, name="v") + "Xv[:90], yv[:90] = X[500:590], y[500:590]\n"
    [finding], _ = data_findings(make_project, data, "train-val-leakage")
    assert finding.severity.value == "warning" and finding.location == "data: val_loader"
    assert finding.metrics["exact_copies"] == 90 and finding.metrics["leaked_fraction"] == pytest.approx(0.3)
    assert "0 = 500, 1 = 501" in finding.evidence[0]
    assert finding.metrics["same_label"] == 1.0


def test_near_copies_are_found(make_project):
    data = (blobs(1000, 20, 3) + blobs(300, 20, 3, seed=1, name="v")
            + "Xv[:90] = X[:90] + 0.01 * torch.randn(90, 20, generator=g)\n")
    [finding], _ = data_findings(make_project, data, "train-val-leakage", d=20)
    assert finding.severity.value == "warning" and finding.metrics["near_copies"] >= 85
    assert finding.metrics["exact_copies"] == 0


def test_data_copied_then_split_is_found(make_project):
    data = (blobs(800, 20, 3) + "X = torch.cat([X, X + 0.01 * torch.randn(800, 20, generator=g)])\n"
            "y = torch.cat([y, y])\np = torch.randperm(1600, generator=g)\n"
            "Xv, yv, X, y = X[p[:300]], y[p[:300]], X[p[300:]], y[p[300:]]\n")
    [finding], _ = data_findings(make_project, data, "train-val-leakage", d=20)
    assert finding.metrics["leaked_fraction"] > 0.6


@pytest.mark.parametrize("name,data,d", [
    ("independent", blobs(1000, 8, 3) + blobs(300, 8, 3, seed=1, name="v"), 8),
    # Points along a curve: nearest neighbours are naturally very close.
    ("curve", "t = torch.rand(1300, generator=g) * 6.28\nX = torch.stack([t.cos(), t.sin()], 1)\n"
              "y = (t > 3.14).long()\nXv, yv, X, y = X[:300], y[:300], X[300:], y[300:]\n", 2),
])
def test_similar_but_distinct_samples_are_silent(make_project, name, data, d):
    found, _ = data_findings(make_project, data, "train-val-leakage", d=d)
    assert [f for f in found if f.severity.value != "info"] == []


def test_recurring_categorical_rows_only_count_beyond_their_natural_rate(make_project):
    data = ("X = torch.randint(0, 3, (1300, 4), generator=g).float()\ny = (X.sum(1) > 4).long()\n"
            "Xv, yv, X, y = X[:300], y[:300], X[300:], y[300:]\n")
    found, _ = data_findings(make_project, data, "train-val-leakage", d=4)
    assert found == []


def test_subsets_of_one_dataset_are_told_apart(make_project):
    data = blobs(1000, 8, 3) + "ds = TensorDataset(X, y)\n"
    train = "DataLoader(ds, batch_size=64, sampler=SubsetRandomSampler(range(0, 800)))"
    disjoint = '"val_loader": DataLoader(ds, batch_size=64, sampler=SubsetRandomSampler(range(800, 1000))),'
    found, _ = data_findings(make_project, data, "train-val-leakage", train=train, extra=disjoint)
    assert found == []
    overlapping = '"val_loader": DataLoader(ds, batch_size=64, sampler=SubsetRandomSampler(range(700, 900))),'
    [finding], _ = data_findings(make_project, data, "train-val-leakage", train=train, extra=overlapping)
    assert finding.metrics["leaked_fraction"] == pytest.approx(0.5)
