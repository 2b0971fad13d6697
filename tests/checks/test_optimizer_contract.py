"""The optimizer-contract check: zero_grad() that leaves gradients, a step that goes uphill, and silence
on torch's optimisers and on correct custom ones."""

import pytest
import torch
from torch import nn

from dldoctor.checks.running.optimizer_contract import judge_clearing, judge_step
from dldoctor.probes.optimizer_contract import FirstStep, GroupClearing, OptimizerContract, measure_optimizer_contract
from tests.conftest import diagnose_file

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = (X[:, 0] + X[:, 1] > 0).long()

class Custom(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))
{zero_grad}
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                {update}

def two_groups(params):
    params = list(params)  # body, then head: a smaller learning rate for the head
    return Custom([{{"params": params[:2]}}, {{"params": params[2:], "lr": 0.02}}])

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.Tanh())
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.body(x))

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": {optimizer},
    }}
"""

DESCENT = 'p.add_(buf, alpha=-group["lr"])'
TWO_GROUPS = "two_groups"


def body(zero_grad="", update=DESCENT, optimizer="lambda p: Custom(p)"):
    return BODY.format(zero_grad=zero_grad, update=update, optimizer=optimizer)


def run(make_project, text):
    diagnosis = diagnose_file(make_project(text), select=("optimizer-contract",))
    status = {c.name: c.status.value for c in diagnosis.checks}["optimizer-contract"]
    assert status in ("passed", "failed"), diagnosis.checks
    return diagnosis.diagnoses


BUGS = {
    "zero-grad-does-nothing": dict(
        zero_grad="    def zero_grad(self, set_to_none=True):\n        pass\n",
        id="stale-gradients", words=["zero_grad", "100%"]),
    "zero-grad-detaches-only": dict(
        zero_grad="    def zero_grad(self, set_to_none=True):\n"
                  "        for group in self.param_groups:\n"
                  "            for p in group['params']:\n"
                  "                if p.grad is not None:\n"
                  "                    p.grad.detach_()\n",
        id="stale-gradients", words=["detach_"]),
    "zero-grad-first-group-only": dict(
        zero_grad="    def zero_grad(self, set_to_none=True):\n"
                  "        for p in self.param_groups[0]['params']:\n"
                  "            p.grad = None\n",
        optimizer=TWO_GROUPS, id="stale-gradients", words=["param group 1", "group 0: cleared"]),
    "step-adds-the-gradient": dict(
        update='p.add_(buf, alpha=group["lr"])', id="loss-sign-flipped", words=["uphill", "cosine -1"]),
    "step-sign-of-gradient-added": dict(
        update='p.add_(torch.sign(p.grad) * group["lr"])', id="loss-sign-flipped", words=["rose"]),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_bug_is_reported_at_the_users_method(make_project, name):
    case = dict(BUGS[name])
    found = run(make_project, body(**{k: case.pop(k) for k in ("zero_grad", "update", "optimizer") if k in case}))
    assert [f.id for f in found] == [case["id"]], found
    top = found[0]
    assert top.severity.value == "error"
    assert top.location.startswith("train.py:"), top.location
    text = " ".join((top.title, *top.evidence, *top.fixes))
    for word in case["words"]:
        assert word in text, (word, text)


def test_partial_clearing_reports_the_share_left(make_project):
    zero_grad = ("    def zero_grad(self, set_to_none=True):\n"
                 "        for p in self.param_groups[0]['params']:\n"
                 "            p.grad = None\n")
    (finding,) = run(make_project, body(zero_grad=zero_grad, optimizer=TWO_GROUPS))
    # head: 32 * 2 + 2 = 66 of 8 * 32 + 32 + 66 = 354 values
    assert finding.metrics["uncleared_values"] == 66 and finding.metrics["groups_uncleared"] == 1
    assert finding.metrics["uncleared_fraction"] == pytest.approx(66 / 354, abs=1e-4)


HEALTHY = {
    "custom-momentum-sgd": body(),
    "custom-zero-grad-set-to-none-false": body(
        zero_grad="    def zero_grad(self, set_to_none=False):\n"
                  "        for group in self.param_groups:\n"
                  "            for p in group['params']:\n"
                  "                if p.grad is not None:\n"
                  "                    p.grad.detach_()\n"
                  "                    p.grad.zero_()\n"),
    "custom-two-groups": body(optimizer=TWO_GROUPS),
    "torch-adam": body(optimizer="lambda p: torch.optim.Adam(p, lr=1e-3)"),
    "torch-adamw-decay": body(optimizer="lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.5)"),
    "torch-sgd-momentum": body(optimizer="lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)"),
    "torch-lbfgs-needs-closure": body(optimizer="lambda p: torch.optim.LBFGS(p)"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_optimizers_are_silent(make_project, name):
    assert list(run(make_project, HEALTHY[name])) == []


def test_torch_maximize_is_ascent_located_at_the_factory(make_project):
    (finding,) = run(make_project, body(optimizer="lambda p: torch.optim.SGD(p, lr=0.1, maximize=True)"))
    assert finding.id == "loss-sign-flipped"
    assert any("maximize=True" in e for e in finding.evidence)
    assert finding.location.startswith("train.py:")


# -- the measurement on every torch optimiser -------------------------------------------------
TORCH_OPTIMIZERS = ["ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
                    "RMSprop", "Rprop", "SGD"]


@pytest.mark.parametrize("name", [n for n in TORCH_OPTIMIZERS if hasattr(torch.optim, n)])
def test_every_torch_optimizer_clears_and_descends_with_its_defaults(name):
    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))

    def make_optimizer(model):
        cls = getattr(torch.optim, name)
        return cls(model.parameters(), lr=1e-3) if name == "SGD" else cls(model.parameters())

    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(64, 10, generator=g), torch.randint(0, 3, (64,), generator=g))
    contract = measure_optimizer_contract(make_model, make_optimizer, batch, lambda m, b: (m(b[0]), b[1]),
                                          nn.CrossEntropyLoss(), seed=0)
    assert not contract.error
    assert all(group.left_tensors == 0 and group.tensors > 0 for group in contract.clearing)
    step = contract.first_step
    assert step is not None and step.cosine is not None and step.cosine > 0.5, step
    assert step.loss_after < step.loss_before
    assert judge_clearing(contract, "", 6) is None and judge_step(contract, "", 0.0) is None


# -- pure judging --------------------------------------------------------------------------
def contract(cosine=-1.0, before=2.0, after=2.1, reference=1.9, clearing=()):
    step = FirstStep(cosine, 0.1, 1.0, before, after, 0.1, reference, False)
    return OptimizerContract("MySGD", True, "train.py:12", "train.py:8", "train.py:5", False, clearing, step)


def test_ascent_needs_the_loss_to_rise_and_the_reference_to_fall():
    assert judge_step(contract(), "", 0.0) is not None
    assert judge_step(contract(after=1.95), "", 0.0) is None  # the loss fell: not uphill
    assert judge_step(contract(reference=2.05), "", 0.0) is None  # a plain gradient step fails as well
    assert judge_step(contract(cosine=0.3), "", 0.0) is None  # points downhill: a rise is the step size's
    assert judge_step(contract(), "", 0.0).location == "train.py:12"


def test_clearing_names_the_groups_left():
    groups = (GroupClearing(0, 2, 10, 0, 0, ()), GroupClearing(1, 2, 6, 2, 6, ("head.weight", "head.bias")))
    verdict = judge_clearing(contract(clearing=groups), "", 6)
    assert verdict is not None and verdict.location == "train.py:8"
    assert verdict.metrics["uncleared_fraction"] == pytest.approx(6 / 16, abs=1e-4)
    assert "param group 1" in verdict.title
    assert judge_clearing(contract(clearing=(GroupClearing(0, 2, 10, 0, 0, ()),)), "", 6) is None


def test_sparse_gradients_are_read():
    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Embedding(50, 8, sparse=True), nn.Flatten(), nn.Linear(8 * 4, 2))

    g = torch.Generator().manual_seed(1)
    batch = (torch.randint(0, 50, (16, 4), generator=g), torch.randint(0, 2, (16,), generator=g))

    contract = measure_optimizer_contract(make_model, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), batch,
                                          lambda m, b: (m(b[0]), b[1]), nn.CrossEntropyLoss(), seed=0)
    assert not contract.error, contract.error
    assert contract.clearing[0].tensors == 3 and contract.clearing[0].left_tensors == 0
    assert contract.first_step is not None and contract.first_step.cosine == pytest.approx(1.0, abs=1e-6)


def test_an_optimizer_over_the_users_own_model_is_never_stepped():
    torch.manual_seed(0)
    users = nn.Linear(4, 2)
    kept = [p.detach().clone() for p in users.parameters()]
    batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
    contract = measure_optimizer_contract(lambda: nn.Linear(4, 2), lambda m: torch.optim.SGD(users.parameters(), lr=1),
                                          batch, lambda m, b: (m(b[0]), b[1]), nn.CrossEntropyLoss(), seed=0)
    assert "not parameters of the model" in contract.error and contract.first_step is None
    assert all(torch.equal(p, k) for p, k in zip(users.parameters(), kept))
