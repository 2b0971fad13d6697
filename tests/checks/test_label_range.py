"""The label-range check: labels that do not fit the output width without crashing the first step."""

import pytest

from dldoctor.checks.running.label_range import Thresholds, judge_binary_targets, judge_index_labels
from dldoctor.probes.loss_probe import LabelCounts, LabelSummary
from tests.conftest import diagnose_file

HEADER = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler, TensorDataset
"""

BODY = """
g = torch.Generator().manual_seed(0)
N = {n}
X = torch.randn(N, 8, generator=g)
y = torch.randint(0, 10, (N,), generator=g)

class Records(Dataset):
    # A map-style dataset with no 'targets' attribute: only its batches can be read.
    def __init__(self, x, t):
        self.x, self.t = x, t
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], self.t[i]

targets = {targets}
dataset = {dataset}

def dldoctor_spec():
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {width})),
        "train_loader": DataLoader(dataset, batch_size=32{sampler}),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
        {extra}
    }}
"""

# Labels 1..10 for a 10-wide head, where the first batch holds no 10 but later data does.
ONE_BASED_RARE_TOP = "torch.where(torch.arange(N) % 97 == 50, torch.tensor(10), y.clamp(min=1))"


def findings(make_project, n=512, targets="y", dataset="TensorDataset(X, targets)", width=10,
             loss="nn.CrossEntropyLoss()", extra="", sampler=""):
    body = BODY.format(n=n, targets=targets, dataset=dataset, width=width, loss=loss, extra=extra, sampler=sampler)
    diagnosis = diagnose_file(make_project(body, header=HEADER), select=("label-range",))
    assert {c.name: c.status.value for c in diagnosis.checks}["label-range"] in ("passed", "failed")
    return [f for f in diagnosis.diagnoses if f.id == "label-out-of-range"]


def test_a_label_beyond_the_head_later_in_the_data_is_an_error(make_project):
    [f] = findings(make_project, targets=ONE_BASED_RARE_TOP)
    assert f.severity.value == "error" and f.location == "data"
    assert "{10}" in f.title and "10 classes" in f.title
    assert "y - 1" in f.fixes[0]
    assert f.metrics["whole_training_set"] is True and f.metrics["out_of_range"] == 5
    assert f.metrics["one_based"]  # labels 1..10 for 10 outputs: the one case that is 1-based


def test_a_missing_label_0_seen_in_batches_only_is_not_one_based(make_project):
    # Labels 1..3 under a 4-wide head: 1-based labels would reach 4, which never occurs;
    # label 4 missing by chance is as likely as label 0 missing by chance.
    assert findings(make_project, targets="1 + y % 3", width=4, dataset="Records(X, targets)") == []


def test_a_padding_id_0_the_loss_ignores_is_never_a_label(make_project):
    # A language-model-like head: id 0 is padding, ignored by the loss, the rest up to the width occur.
    assert findings(make_project, targets="y",
                    loss="nn.CrossEntropyLoss(ignore_index=0)") == []


def test_a_head_far_wider_than_the_labels_is_a_warning_on_the_last_layer(make_project):
    [f] = findings(make_project, width=1000)
    assert f.severity.value == "warning" and f.location == "model[2]"
    assert "1000 classes" in f.title and "out_features" in f.fixes[0] and "(10)" in f.fixes[0]


def test_a_head_slightly_wider_than_the_labels_is_info(make_project):
    [f] = findings(make_project, width=12)
    assert f.severity.value == "info"


def test_spec_num_classes_disagreeing_with_the_output_is_a_warning(make_project):
    [f] = findings(make_project, extra='"num_classes": 12,')
    assert f.severity.value == "warning" and f.metrics["spec_num_classes"] == 12
    assert "num_classes=12" in f.title


def test_three_classes_into_a_binary_cross_entropy_are_an_error(make_project):
    [f] = findings(make_project, targets="(y % 3).float().view(-1, 1)", width=1, loss="nn.BCEWithLogitsLoss()")
    assert f.severity.value == "error" and "{0, 1, 2}" in f.title
    assert "nn.CrossEntropyLoss with a 3-wide last layer" in f.fixes[0]


HEALTHY = {
    "labels-match-the-head": dict(),
    "custom-dataset": dict(dataset="Records(X, targets)"),
    "few-samples-missing-label-0-by-chance": dict(n=24, targets="y.clamp(min=1)", dataset="Records(X, targets)"),
    "padding-label-ignored": dict(targets="torch.where(y == 3, torch.tensor(-100), y)"),
    "soft-binary-targets": dict(targets="torch.rand(N, 1, generator=g)", width=1, loss="nn.BCEWithLogitsLoss()"),
    "binary-with-num-classes-2": dict(targets="(y % 2).float().view(-1, 1)", width=1,
                                      loss="nn.BCEWithLogitsLoss()", extra='"num_classes": 2,'),
    "regression": dict(targets="X[:, :1]", width=1, loss="nn.MSELoss()"),
    # Unlabelled samples (-1) live in the dataset but the sampler only draws labelled ones.
    "sampler-skips-unlabelled": dict(targets="torch.where(torch.arange(N) % 5 == 0, torch.tensor(-1), y)",
                                     sampler=", sampler=SubsetRandomSampler([i for i in range(N) if i % 5])"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_fitting_labels_are_silent(make_project, name):
    assert findings(make_project, **HEALTHY[name]) == []


# -- the pure judgement --------------------------------------------------------------

T = Thresholds(chance_alpha=1e-3, wide_head_ratio=8.0)


def counts(labels, rows=None):
    pairs = tuple(sorted(labels.items()))
    n = sum(labels.values())
    return LabelCounts(rows=rows or n, values=n, minimum=min(labels), maximum=max(labels), integral=True,
                       counts=pairs)


def test_a_missing_label_0_in_the_batches_is_no_evidence_of_one_based_labels():
    # However many samples: 1-based labels would show up as the label 4 the head cannot hold.
    few = LabelSummary(counts({1: 3, 2: 3, 3: 2}), None)
    many = LabelSummary(counts({1: 90, 2: 80, 3: 86}), None)
    assert judge_index_labels(4, few, None, T) == []
    assert judge_index_labels(4, many, None, T) == []


def test_a_vocabulary_whose_padding_id_is_never_a_target_is_silent():
    # An LM's targets: every token id but 0 (padding), up to the vocabulary's last id.
    tokens = {i: 40 + i for i in range(1, 40)}
    assert judge_index_labels(40, LabelSummary(counts(tokens, rows=2048), None), None, T) == []
    whole = LabelSummary(counts(tokens), counts({i: 10 * n for i, n in tokens.items()}), ignored=0)
    assert judge_index_labels(40, whole, None, T) == []  # 0 is the loss's ignore_index: never a label


def test_labels_one_to_width_are_out_of_range_with_the_one_based_fix():
    [v] = judge_index_labels(4, LabelSummary(counts({1: 30, 2: 30, 3: 30, 4: 30}), None), None, T)
    assert v.case == "out-of-range" and v.severity.value == "error" and v.metrics["one_based"]
    assert "y - 1" in v.fixes[0]


def test_the_whole_training_set_turns_suspicion_into_facts():
    batches = counts({1: 30, 2: 30, 3: 4})
    full = LabelSummary(batches, counts({1: 300, 2: 300, 3: 40, 4: 3}))
    [v] = judge_index_labels(4, full, None, T)
    assert v.case == "out-of-range" and v.severity.value == "error"
    no_top = LabelSummary(batches, counts({1: 300, 2: 300, 3: 40}))
    [v] = judge_index_labels(4, no_top, None, T)
    assert v.case == "unused-zero" and v.severity.value == "info"


def test_binary_targets_inside_unit_interval_are_silent():
    soft = LabelSummary(LabelCounts(64, 64, 0.05, 0.95, False), None)
    assert judge_binary_targets("binary-logits", soft) == []
    hard = LabelSummary(counts({0: 20, 1: 20, 2: 24}), None)
    assert judge_binary_targets("binary-logits", hard)[0].severity.value == "error"
