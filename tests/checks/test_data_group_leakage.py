"""train-val-leakage by subject: exact with the spec's groups, a measured hint without them."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.spec import validate_spec
from dldoctor.probes.data.tight_clusters import cluster_folds
from tests.checks.data_cases import VAL, blobs, data_findings

# Thirty subjects, twenty samples each: a personal signature three times the
# sample-to-sample noise, and a label that belongs to the subject.
SUBJECTS = """
gg = torch.Generator().manual_seed(3)
signature = torch.randn(30, 12, generator=gg)
subject_label = (signature[:, :3].sum(1) > 0).long()
subject = torch.arange(30).repeat_interleave(20)
X_all = signature[subject] + 0.3 * torch.randn(600, 12, generator=gg)
y_all = subject_label[subject]
"""
BY_SAMPLE = "p = torch.randperm(600, generator=gg)\ntr, va = p[120:], p[:120]\n"
# Three subjects of each label held out (stratified by subject, as StratifiedGroupKFold does).
BY_SUBJECT = ("pos, neg = (subject_label == 1).nonzero().squeeze(1), (subject_label == 0).nonzero().squeeze(1)\n"
              "held = torch.isin(subject, torch.cat([pos[:3], neg[:3]]))\n"
              "tr, va = (~held).nonzero().squeeze(1), held.nonzero().squeeze(1)\n")
SPLIT = "X, y, Xv, yv = X_all[tr], y_all[tr], X_all[va], y_all[va]\n"
GROUPS = VAL + '"groups": {"train": subject[tr], "val": subject[va].tolist()},'


def _leakage(make_project, split: str, extra: str = VAL):
    return data_findings(make_project, SUBJECTS + split + SPLIT, "train-val-leakage", d=12, k=2, extra=extra,
                         select=("group-leakage",))


# -- with groups: exact --------------------------------------------------------------------
def test_subjects_on_both_sides_are_counted_exactly(make_project):
    [finding], _ = _leakage(make_project, BY_SAMPLE, GROUPS)
    assert finding.severity.value == "warning" and finding.location == "data: val_loader"
    assert finding.metrics["method"] == "groups" and finding.metrics["leaked_fraction"] == 1.0
    assert finding.metrics["shared_groups"] == finding.metrics["held_out_groups"] == 30
    assert "group " in finding.evidence[0] and "GroupShuffleSplit" in finding.fixes[0]


def test_a_split_by_subject_is_silent(make_project):
    found, diagnosis = _leakage(make_project, BY_SUBJECT, GROUPS)
    assert found == []
    assert [c.status.value for c in diagnosis.checks if c.name == "group-leakage"] == ["passed"]


def test_a_few_shared_samples_are_a_note(make_project):
    # Six subjects held out, plus the first 2 samples of a training subject: 2 of 122 validation samples.
    split = BY_SUBJECT + ("extra = (subject == subject[tr[0]]).nonzero().squeeze(1)[:2]\n"
                          "tr = tr[~torch.isin(tr, extra)]\nva = torch.cat([va, extra])\n")
    [finding], _ = _leakage(make_project, split, GROUPS)
    assert finding.severity.value == "info" and finding.metrics["shared_groups"] == 1
    assert finding.metrics["leaked_fraction"] == pytest.approx(2 / 122)


def test_groups_from_a_function_are_read_once_the_data_is(make_project):
    extra = VAL + '"groups": lambda: {"train": subject[tr].numpy(), "val": subject[va].numpy()},'
    [finding], _ = _leakage(make_project, BY_SAMPLE, extra)
    assert finding.metrics["method"] == "groups"


# -- bad groups: a spec error (exit 2), never a traceback -----------------------------------
def _spec(groups, val=True):
    data = TensorDataset(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long))
    return {"model": torch.nn.Linear(2, 2), "train_loader": DataLoader(data), "loss_fn": torch.nn.CrossEntropyLoss(),
            "optimizer": lambda p: torch.optim.SGD(p, lr=0.1), "val_loader": DataLoader(data) if val else None,
            "groups": groups}


@pytest.mark.parametrize("groups,message", [
    ({"train": list(range(10)), "valid": list(range(10))}, "unknown split 'valid'"),
    ({"train": list(range(9)), "val": list(range(10))}, "has 9 IDs, but the train_loader's dataset has 10"),
    ({"val": list(range(10))}, "needs the training split's IDs"),
    ({"train": list(range(10))}, "at least one held-out split"),
    ({"train": np.zeros((10, 2)), "val": list(range(10))}, "one ID per sample (1-D)"),
    ({"train": "abcdefghij", "val": list(range(10))}, "must be a sequence of group IDs"),
    ({"train": list(range(10)), "test": list(range(10))}, "the spec has no test_loader"),
    ([1, 2, 3], "must be a dict of split name"),
])
def test_bad_groups_are_spec_errors(groups, message):
    with pytest.raises(EntrypointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_spec(_spec(groups))


@pytest.mark.slow
def test_the_command_exits_2_with_the_problem_and_no_traceback(make_project):
    from tests.conftest import run_cli

    path = make_project(SUBJECTS + BY_SAMPLE + SPLIT + """
def dldoctor_spec():
    return {"model": lambda: nn.Linear(12, 2), "loss_fn": nn.CrossEntropyLoss(),
            "train_loader": DataLoader(TensorDataset(X, y), batch_size=64),
            "val_loader": DataLoader(TensorDataset(Xv, yv), batch_size=64),
            "optimizer": lambda p: torch.optim.SGD(p, lr=0.1),
            "groups": {"train": subject[tr], "validation": subject[va]}}
""")
    proc = run_cli("data", path)
    assert proc.returncode == 2 and "unknown split 'validation'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_groups_of_the_wrong_length_from_a_function_stop_the_run(make_project):
    extra = VAL + '"groups": lambda: {"train": subject[tr][:100], "val": subject[va]},'
    _, diagnosis = _leakage(make_project, BY_SAMPLE, extra)
    [fatal] = [f for f in diagnosis.diagnoses if f.id == "entrypoint-error"]
    assert fatal.metrics["fatal"] and "has 100 IDs" in fatal.title and "480 samples" in fatal.title


# -- without groups: the tight-cluster hint ---------------------------------------------------
def test_subjects_split_by_sample_are_found_without_groups(make_project):
    [finding], _ = _leakage(make_project, BY_SAMPLE)
    assert finding.severity.value == "warning" and finding.metrics["method"] == "tight-clusters"
    assert finding.metrics["random_split_rate"] > 0.8 and finding.metrics["like_random_split"] > 0.8
    assert "groups" in finding.fixes[1]


def test_subjects_split_by_subject_are_silent_without_groups(make_project):
    found, _ = _leakage(make_project, BY_SUBJECT)
    assert found == []


@pytest.mark.parametrize("data,d", [
    (blobs(1000, 8, 3) + blobs(300, 8, 3, seed=1, name="v"), 8),  # i.i.d. classes
    (blobs(1300, 12, 2, spread=0.3) + "Xv, yv, X, y = X[:300], y[:300], X[300:], y[300:]\n", 12),  # tight classes
])
def test_independent_samples_are_silent(make_project, data, d):
    found, _ = data_findings(make_project, data, "train-val-leakage", d=d, select=("group-leakage",))
    assert found == []


def test_a_split_by_subject_is_not_a_distribution_shift(make_project):
    """The domain classifier keeps each subject's samples in one fold: it cannot tell the splits
    apart by recognising subjects (with samples of a subject in several folds, it does: AUC 0.9)."""
    found, _ = data_findings(make_project, SUBJECTS + BY_SUBJECT + SPLIT, "distribution-shift", d=12, k=2,
                             select=("data-shift",))
    assert [f for f in found if f.severity.value != "info"] == []


def test_cluster_folds_keep_a_subject_in_one_fold():
    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(40), 6)
    z = (rng.standard_normal((40, 8))[subject] + 0.2 * rng.standard_normal((240, 8))).astype(np.float32)
    fold = cluster_folds(z, np.zeros(240, dtype=np.int64), 5, seed=0)
    spread = [len(set(fold[subject == s])) for s in range(40)]
    assert sum(s > 1 for s in spread) <= 2 and len(set(fold)) == 5


def test_rows_that_coincide_in_the_kept_features_give_no_cluster_and_no_crash():
    """Token sequences differ in their IDs, but once the category-like columns are out most
    rows can coincide in what is left: a core distance of 0 for most rows has no density
    contrast to read (it divided by zero on a RoBERTa spec)."""
    from dldoctor.probes.data.tight_clusters import _tight

    z = np.zeros((64, 3), dtype=np.float32)
    z[32:] = 1.0  # two points, each shared by half the rows
    z[:4] = np.random.default_rng(0).normal(size=(4, 3))
    half = _tight(np.arange(64), z, None, min_size=5, persistence=1.5, sub_class_share=0.5)
    assert half.clusters == ()
