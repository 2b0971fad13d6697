"""distribution-shift (input level): shifted features, a separable domain, shifted labels;
silent on one distribution."""

import numpy as np
import pytest

from dldoctor.probes.data.models import auc
from dldoctor.probes.data.shift import chi2_sf, ks_2samp
from tests.checks.data_cases import blobs, data_findings

IMAGES = """
X = torch.randn(800, 3, 8, 8, generator=g)
y = torch.randint(0, 3, (800,), generator=g)
Xv = torch.randn(200, 3, 8, 8, generator=g)
yv = torch.randint(0, 3, (200,), generator=g)
"""
CNN = "nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))"


def test_two_shifted_features_are_named(make_project):
    data = blobs(1500, 10, 3) + blobs(400, 10, 3, seed=1, name="v") + "Xv[:, 3] += 2.0\nXv[:, 7] *= 3.0\n"
    [finding], _ = data_findings(make_project, data, "distribution-shift", d=10)
    assert finding.severity.value == "warning" and finding.metrics["domain_auc"] > 0.75
    feature_line = next(e for e in finding.evidence if "most shifted" in e)
    assert feature_line.index("feature 3") < feature_line.index("feature 7")


def test_one_distribution_is_silent(make_project):
    data = blobs(1500, 10, 3) + blobs(400, 10, 3, seed=1, name="v")
    found, _ = data_findings(make_project, data, "distribution-shift", d=10)
    assert found == []


def test_images_preprocessed_differently_point_at_the_transform(make_project):
    [finding], _ = data_findings(make_project, IMAGES + "Xv = Xv * 4 + 2\n", "distribution-shift", model=CNN)
    assert finding.severity.value == "warning"
    assert any(e.startswith("mean shift per image channel") for e in finding.evidence)
    assert "pre-processed differently" in finding.fixes[0]


def test_a_split_of_sorted_data_gets_the_stratify_fix(make_project):
    data = blobs(1000, 8, 3) + ("o = torch.argsort(y)\nX, y = X[o], y[o]\n"
                                "Xv, yv, X, y = X[800:], y[800:], X[:800], y[:800]\n")
    [finding], _ = data_findings(make_project, data, "distribution-shift")
    assert finding.severity.value == "warning" and finding.metrics["label_tvd"] > 0.5
    assert "stratify" in finding.fixes[0]


def test_shifted_regression_targets(make_project):
    data = ("X = torch.randn(1000, 4, generator=g)\ny = X.sum(1, keepdim=True)\n"
            "Xv = torch.randn(300, 4, generator=g)\nyv = Xv.sum(1, keepdim=True) + 3.0\n")
    [finding], _ = data_findings(make_project, data, "distribution-shift", d=4,
                                 model="nn.Linear(4, 1)", loss="nn.MSELoss()")
    assert "targets are shifted" in finding.title


def test_statistics_match_their_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(0.5, 1, size=300)
    stat, p = ks_2samp(a, b)
    scipy = pytest.importorskip("scipy.stats")
    ref = scipy.ks_2samp(a, b, method="asymp")
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=0.05)
    assert chi2_sf(3.84, 1) == pytest.approx(0.05, abs=0.005)
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
