"""label-noise: confident learning on cheap out-of-sample predictions; silent where labels are merely hard."""

import numpy as np
import pytest

from dldoctor.probes.data.label_issues import confident_joint, find_label_issues
from tests.checks.data_cases import blobs, data_findings

FLIP = """
flipped = torch.rand(len(y), generator=g) < {share}
y[flipped] = (y[flipped] + torch.randint(1, 4, (int(flipped.sum()),), generator=g)) % 4
"""


def noisy_probs(n=600, k=3, wrong=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = np.full((n, k), 0.05)
    probs[np.arange(n), labels] = 0.9
    flipped = rng.choice(n, wrong, replace=False)
    given = labels.copy()
    given[flipped] = (given[flipped] + 1) % k
    return given, probs / probs.sum(1, keepdims=True), flipped


def test_confident_learning_finds_the_flipped_labels():
    given, probs, flipped = noisy_probs()
    issues = find_label_issues(given, probs, use_cleanlab=False)
    assert set(issues.flagged) == set(flipped)
    assert issues.noise_fraction == pytest.approx(0.1, abs=0.01)
    assert confident_joint(given, probs).sum() == pytest.approx(len(given))


def test_cleanlab_flags_the_same_samples_when_installed():
    pytest.importorskip("cleanlab")
    given, probs, flipped = noisy_probs()
    issues = find_label_issues(given, probs, use_cleanlab=True)
    assert issues.method == "cleanlab" and set(issues.flagged) == set(flipped)


def test_flipped_labels_are_a_warning_naming_the_samples(make_project):
    data = blobs(1500, 10, 4) + "clean = y.clone()\n" + FLIP.format(share=0.25) + "Xv, yv = X[:200], clean[:200]\n"
    [finding], _ = data_findings(make_project, data, "label-noise", d=10, k=4)
    assert finding.severity.value == "warning"
    assert 0.18 < finding.metrics["noise_fraction"] < 0.32
    flagged = [int(i) for i in finding.metrics["flagged_indices"].split(", ")]
    assert flagged and "dataset index" in finding.evidence[-1] + finding.fixes[0]
    assert finding.fixes[0].startswith("Look at the flagged samples first")


def test_flagged_indices_are_the_flipped_rows(make_project, tmp_path):
    data = blobs(1500, 10, 4) + FLIP.format(share=0.25) + "Xv, yv = X[:200], y[:200]\n" + \
        f"torch.save(flipped.nonzero()[:, 0], r'{tmp_path / 'flipped.pt'}')\n"
    [finding], _ = data_findings(make_project, data, "label-noise", d=10, k=4)
    import torch

    truly = set(torch.load(tmp_path / "flipped.pt").tolist())
    flagged = [int(i) for i in finding.metrics["flagged_indices"].split(", ")]
    assert sum(i in truly for i in flagged) / len(flagged) > 0.9


@pytest.mark.parametrize("name,data", [
    ("clean", blobs(1500, 10, 4)),
    # Labels drawn with inherent uncertainty (overlapping classes): ambiguous, not wrong.
    ("overlapping", "X = torch.randn(2000, 10, generator=g)\n"
                    "y = ((X[:, 0] + 0.7 * torch.randn(2000, generator=g)) > 0).long()\n"),
    # Clean labels from a random tanh network: a linear model is wrong in whole regions.
    ("teacher", "X = torch.randn(3000, 10, generator=g)\n"
                "w1 = torch.randn(10, 128, generator=g); w2 = torch.randn(128, 4, generator=g)\n"
                "y = (torch.tanh(X @ w1) @ w2).argmax(1)\n"),
])
def test_clean_labels_stay_silent(make_project, name, data):
    found, _ = data_findings(make_project, data + "Xv, yv = X[:200], y[:200]\n", "label-noise", d=10, k=4)
    assert found == [], [f.title for f in found]


def test_identical_inputs_with_different_labels(make_project):
    data = blobs(600, 8, 3) + "X[300:360] = X[:60]\ny[300:360] = (y[:60] + 1) % 3\nXv, yv = X[:100], y[:100]\n"
    [finding], _ = data_findings(make_project, data, "label-noise")
    assert finding.severity.value == "warning" and finding.metrics["conflicting_duplicates"] == 120
    assert any("identical training inputs carry different labels" in e for e in finding.evidence)


def test_the_users_model_gives_out_of_fold_probabilities(make_project):
    import torch

    from dldoctor.core.config import load_config
    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import load_target
    from dldoctor.probes.data import measurements as m
    from dldoctor.probes.data.noise import noise_rows
    from dldoctor.probes.data.user_model import user_model_oof
    from tests.checks.data_cases import MLP, TEMPLATE, TRAIN, VAL

    body = blobs(600, 10, 4) + "Xv, yv = X[:100], y[:100]\n"
    path = make_project(TEMPLATE.format(data=body, model=MLP.format(d=10, k=4), train=TRAIN,
                                        loss="nn.CrossEntropyLoss()", extra=VAL))
    ctx = Context(load_target(str(path), None), load_config(profile="thorough"), torch.device("cpu"), 0)
    ctx.prepare()
    train = m.train(ctx)
    rows = noise_rows(train, 1000, 0)
    probs = user_model_oof(ctx, train, rows, 4, 3, epochs=20, max_seconds=20.0)
    assert probs.shape == (len(rows), 4) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert np.mean(probs.argmax(1) == train.labels[rows]) > 0.9  # separable blobs, learned out of fold


def test_model_outputs_become_probabilities():
    import torch

    from dldoctor.probes.data.user_model import _probabilities

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert _probabilities(logits, 2).sum(1) == pytest.approx([1.0, 1.0])
    assert _probabilities(torch.log_softmax(logits, 1), 2) == pytest.approx(torch.softmax(logits, 1).numpy())
    assert _probabilities(torch.tensor([0.2, 0.9]), 2)[:, 1] == pytest.approx([0.2, 0.9])
