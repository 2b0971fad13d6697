"""Reading data through the user's loaders: samplers, dicts, streams, caps, odd batches, no side effects."""

import numpy as np
import torch

from dldoctor.probes.data.features import Featurizer, row_hashes
from tests.checks.data_cases import blobs, data_findings
from tests.conftest import diagnose_file

DICTS = """
class Records(torch.utils.data.Dataset):
    def __init__(self, x, t):
        self.x, self.t = x, t
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return {"features": self.x[i], "label": self.t[i]}
"""



def test_dict_batches_are_read_through_the_forward_contract(make_project):
    data = blobs(600, 8, 3) + "y[:30] = 0\n" + DICTS + "Xv, yv = X[:100], y[:100]\n"
    train = "DataLoader(Records(X, y), batch_size=64)"
    extra = ('"val_loader": DataLoader(Records(Xv, yv), batch_size=64),\n'
             '        "forward": lambda model, batch: (model(batch["features"]), batch["label"]),')
    found, diagnosis = data_findings(make_project, data, "train-val-leakage", train=train, extra=extra)
    assert [f.metrics["exact_copies"] for f in found] == [100]
    assert all(c.status.value != "errored" for c in diagnosis.checks)


def test_an_iterable_of_batches_is_read_in_its_order(make_project):
    data = blobs(600, 8, 3) + ("batches = [(X[i:i + 50], y[i:i + 50]) for i in range(0, 600, 50)]\n"
                               "Xv, yv = X[:60], y[:60]\n")
    [finding], _ = data_findings(make_project, data, "train-val-leakage", train="batches")
    assert "position in the loader's output" in finding.evidence[0]


def test_the_cap_samples_uniformly_and_scales_counts(make_project):
    data = ("X = torch.randn(4000, 8, generator=g)\ny = (torch.arange(4000) >= 3800).long()\n"
            "Xv, yv = X[:100], y[:100]\n")
    [finding], _ = data_findings(make_project, data, "class-imbalance", k=2)
    full = finding.metrics["imbalance_ratio"]
    cfg = make_project("data:\n  max_samples: 1000\n", name="cap.yaml", header="")
    [capped], _ = data_findings(make_project, data, "class-imbalance", k=2, config_file=cfg)
    assert full == 19.0 and 12 < capped.metrics["imbalance_ratio"] < 30
    assert any("a uniform sample of 1000 of its 4000 rows" in e for e in capped.evidence)


def test_a_val_loader_that_raises_is_a_finding_not_a_crash(make_project):
    data = blobs(300, 8, 3) + DICTS.replace('return {"features": self.x[i], "label": self.t[i]}',
                                            'raise OSError("cannot open shard 3")')
    extra = '"val_loader": DataLoader(Records(X, y), batch_size=64),'
    _, diagnosis = data_findings(make_project, data, "entrypoint-error", extra=extra)
    [fatal] = [f for f in diagnosis.diagnoses if f.id == "entrypoint-error"]
    assert "reading the val_loader raised OSError: cannot open shard 3" in fatal.evidence[0]


def test_batches_that_are_not_pairs_get_a_clear_message(make_project):
    data = blobs(300, 8, 3) + "triples = [(X[i:i + 50], y[i:i + 50], y[i:i + 50]) for i in range(0, 300, 50)]\n"
    _, diagnosis = data_findings(make_project, data, "entrypoint-error", extra='"val_loader": triples,')
    [fatal] = [f for f in diagnosis.diagnoses if f.id == "entrypoint-error"]
    assert "not an (inputs, targets) pair" in fatal.evidence[0] and '"forward"' in fatal.fixes[0]


def test_reading_is_deterministic_and_leaves_the_users_objects_alone(make_project):
    body = blobs(600, 8, 3) + "Xv, yv = X[:100], y[:100]\n"
    from tests.checks.data_cases import MLP, TEMPLATE, TRAIN, VAL

    path = make_project(TEMPLATE.format(data=body, model=MLP.format(d=8, k=3), train=TRAIN,
                                        loss="nn.CrossEntropyLoss()", extra=VAL))
    from dldoctor.core.stage import Stage

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = diagnose_file(path, stages=(Stage.DATA,), seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = diagnose_file(path, stages=(Stage.DATA,), seed=3)
    assert [f.to_dict() for f in first.diagnoses] == [f.to_dict() for f in second.diagnoses]


def test_features_keep_image_channels_and_count_tokens():
    images = torch.randn(4, 3, 60, 60)
    featurize = Featurizer(budget=300)
    out = featurize([images])
    assert out.shape == (4, 3 * 10 * 10) and featurize.layout().channel_of[:1] == (0,)
    assert np.allclose(out[:, :100].mean(1), images[:, 0].mean((1, 2)).numpy(), atol=1e-5)
    tokens = torch.tensor([[1, 1, 2, 0], [3, 3, 3, 3]])
    bag = Featurizer(budget=64, buckets=8)([tokens])
    assert bag[0, 1] == 2 and bag[1, 3] == 4 and bag.shape == (2, 8)
    wide = Featurizer(budget=32)([torch.randn(5, 5000)])
    assert wide.shape == (5, 32)


def test_hashes_tell_identical_rows_only():
    x = torch.randn(5, 3)
    x[4] = x[1]
    h = row_hashes([x, torch.arange(5).unsqueeze(1)])
    assert h[1] != h[4]  # the second input differs
    h = row_hashes([x])
    assert h[1] == h[4] and len(set(h.tolist())) == 4
