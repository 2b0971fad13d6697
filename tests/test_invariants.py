"""dldoctor leaves the user's objects and random streams exactly as it found them."""

import random

import numpy as np
import torch

from tests.conftest import diagnose_file

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = (X[:, 0] > 0).long()
MODEL = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
LOADER = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)

def dldoctor_spec():
    return {"model": MODEL, "train_loader": LOADER, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": lambda p: torch.optim.SGD(p, lr=0.5)}
"""


def test_user_model_weights_and_rng_are_untouched(make_project):
    import sys

    from dldoctor.core.runner import RunOptions, diagnose

    path = make_project(BODY, name="invariants_train.py")
    sys.path.insert(0, str(path.parent))
    import invariants_train as module  # the spec will be found in this very module object
    before = {k: v.clone() for k, v in module.MODEL.state_dict().items()}
    grads_before = [p.grad for p in module.MODEL.parameters()]
    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    diagnosis = diagnose(RunOptions(target=None, spec="invariants_train:dldoctor_spec", device="cpu"))
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expected[0], got[0]) and expected[1:] == got[1:]
    after = module.MODEL.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.grad for p in module.MODEL.parameters()] == grads_before == [None] * 4
    assert module.MODEL.training
    assert diagnosis.status == "healthy", [f.id for f in diagnosis.diagnoses]
    sys.modules.pop("invariants_train", None)
    sys.path.remove(str(path.parent))


def test_same_input_and_seed_give_the_same_diagnosis(make_project):
    path = make_project(BODY.replace("nn.Linear(16, 2)", "nn.Linear(15, 2)"))
    first = diagnose_file(path, seed=3).to_dict()
    second = diagnose_file(path, seed=3).to_dict()
    for report in (first, second):
        report.pop("duration_s")
        for c in report["checks"]:
            c.pop("duration_s")
    assert first == second and first["diagnoses"][0]["id"] == "shape-mismatch"


def test_a_loader_with_its_own_generator_gives_the_same_batches_every_pass(make_project):
    import sys

    from dldoctor.core.config import load_config
    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import load_target

    path = make_project(BODY.replace("shuffle=True)", "shuffle=True, generator=torch.Generator().manual_seed(5))"),
                        name="generator_train.py")
    loaded = load_target(str(path))
    loader = loaded.spec.train_loader
    state = loader.generator.get_state().clone()
    ctx = Context(loaded, load_config(), torch.device("cpu"), seed=0)
    first = ctx.batches("train", 1)[0]
    again = ctx.batches("train", 3)[0]  # a longer request iterates the loader again
    assert torch.equal(first[0], again[0])
    assert torch.equal(loader.generator.get_state(), state)
    sys.modules.pop("generator_train", None)
