"""The gradient-flow check: each way a parameter misses its gradient or update, and silence on healthy models."""

import pytest

from dldoctor.checks.running.gradient_flow import FrozenFit, ParamState, cover, frozen_layout, frozen_suspect, judge
from dldoctor.probes.gradients import GradFlow, ModuleFlow, OptimizerCoverage
from tests.conftest import HEALTHY_BODY, diagnose_file

BODY = """
g = torch.Generator().manual_seed(0)
X = torch.randn(96, 8, generator=g)
y = (X[:, 0] > 0).long()

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 2)
        {init}

    def forward(self, x):
        {forward}

def dldoctor_spec():
    model = Net()
    return {{
        "model": {model},
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": {optimizer},
    }}
"""


def body(init="pass", forward="return self.fc2(torch.relu(self.fc1(x)))", model="Net",
         optimizer="lambda p: torch.optim.Adam(p, lr=1e-2)"):
    return BODY.format(init=init, forward=forward, model=model, optimizer=optimizer)


def run(make_project, text):
    diagnosis = diagnose_file(make_project(text), select=("gradient-flow",))
    status = {c.name: c.status.value for c in diagnosis.checks}["gradient-flow"]
    assert status in ("passed", "failed"), diagnosis.checks
    return [d for d in diagnosis.diagnoses if d.id == "no-gradient-flow"]


BUGS = {
    "detached-hidden": dict(
        text=body(forward="return self.fc2(torch.relu(self.fc1(x)).detach())"),
        severity="error", location="fc1", words=["cut", "detach"]),
    "data-hidden": dict(
        text=body(forward="return self.fc2(torch.relu(self.fc1(x)).data)"),
        severity="error", location="fc1", words=["cut"]),
    "no-grad-block": dict(
        text=body(forward="with torch.no_grad():\n            h = torch.relu(self.fc1(x))\n"
                          "        return self.fc2(h)"),
        severity="error", location="fc1", words=["no_grad"]),
    "layer-never-called": dict(
        text=body(init="self.norm = nn.LayerNorm(16)"), severity="warning", location="norm",
        words=["never called"]),
    "most-layers-never-called": dict(
        text=body(init="self.deep = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 16))"),
        severity="error", location="deep", words=["never called"]),
    "optimizer-head-only": dict(
        text=body(init="self.fc1 = nn.Linear(8, 64); self.fc2 = nn.Linear(64, 2)",
                  optimizer="lambda p: torch.optim.SGD(model.fc2.parameters(), lr=0.1)", model="model"),
        severity="error", location="fc1", words=["optimiser never updates", "does not hold them"]),
    "optimizer-ignores-params": dict(
        text=body(optimizer="lambda p: torch.optim.SGD(Net().parameters(), lr=0.1)"),
        severity="error", location="optimizer", words=["ignores"]),
    "layers-in-plain-list": dict(
        text=body(init="self.blocks = [nn.Linear(16, 16) for _ in range(2)]",
                  forward="h = torch.relu(self.fc1(x))\n        for b in self.blocks:\n"
                          "            h = torch.relu(b(h))\n        return self.fc2(h)"),
        severity="error", location="blocks", words=["plain python list", "nn.modulelist"]),
    "partly-frozen-layer": dict(
        text=body(init="self.fc1.weight.requires_grad_(False)"), severity="warning", location="fc1",
        words=["frozen"]),
    "rounded-hidden": dict(
        text=body(forward="return self.fc2(torch.round(self.fc1(x)))"), severity="warning", location="fc1",
        words=["exactly zero", "round"]),
}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_bug_is_reported_and_located(make_project, name):
    case = BUGS[name]
    found = run(make_project, case["text"])
    assert found, f"{name}: nothing reported"
    top = found[0]
    assert top.severity.value == case["severity"], top
    assert top.location == case["location"], top
    text = " ".join((top.title, *top.evidence, *top.fixes)).lower()
    for word in case["words"]:
        assert word in text, (word, text)


HEALTHY = {
    "plain-mlp": HEALTHY_BODY,
    "zero-initialised-head": body(init="nn.init.zeros_(self.fc2.weight)"),
    "dead-relu-layer": body(init="nn.init.constant_(self.fc1.bias, -100.0)"),
    "optimizer-from-instance": body(model="model", optimizer="lambda p: torch.optim.SGD(model.parameters(), lr=0.1)"),
    "frozen-but-in-optimizer-bias-only": body(
        init="self.fc1.weight.requires_grad_(False); self.fc2.weight.requires_grad_(False)"),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_get_at_most_info(make_project, name):
    found = run(make_project, HEALTHY[name])
    assert all(f.severity.value == "info" for f in found), found


def test_frozen_backbone_and_pretrained_embedding_are_info_naming_the_module(make_project):
    text = body(init="self.fc1.requires_grad_(False)",
                optimizer="lambda p: torch.optim.Adam([q for q in p if q.requires_grad], lr=1e-2)")
    (info,) = run(make_project, text)
    assert info.severity.value == "info" and info.location == "fc1"
    assert "frozen" in info.title
    emb = """
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 30, (64, 10), generator=g)
    labels = (tokens < 5).sum(1).gt(1).long()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding.from_pretrained(torch.randn(30, 8, generator=torch.Generator().manual_seed(1)))
            self.gru = nn.GRU(8, 16, batch_first=True)
            self.head = nn.Linear(16, 2)

        def forward(self, t):
            return self.head(self.gru(self.embed(t))[1][-1])

    def dldoctor_spec():
        return {"model": Net, "train_loader": DataLoader(TensorDataset(tokens, labels), batch_size=16),
                "loss_fn": nn.CrossEntropyLoss(), "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2)}
    """
    (info,) = run(make_project, emb)
    assert info.severity.value == "info" and info.location == "embed"


# -- pure judging --------------------------------------------------------------------
def p(name, requires=True, grads=("ok", "ok"), opt=True, numel=4):
    return ParamState(name, name.rpartition(".")[0], numel, requires, grads, opt)


def test_cover_collapses_whole_modules():
    names = ["a.0.weight", "a.0.bias", "a.1.weight", "a.1.bias", "b.weight"]
    assert cover(names, {"a.0.weight", "a.0.bias", "a.1.weight"}) == ["a.0", "a.1.weight"]
    assert cover(names, {"a.0.weight", "a.0.bias", "a.1.weight", "a.1.bias"}) == ["a"]
    assert cover(names, set(names)) == [""]


def test_frozen_layout_tells_whole_systematic_and_partial():
    types = {"enc.0": "Linear", "enc.1": "Linear", "head": "Linear", "x.0": "Linear", "x.1": "Linear"}
    whole = [p("enc.0.weight", False), p("enc.0.bias", False), p("enc.1.weight", False), p("enc.1.bias", False),
             p("head.weight"), p("head.bias")]
    assert frozen_layout(whole, types) == (["enc"], [], [])
    bitfit = [p("x.0.weight", False), p("x.0.bias"), p("x.1.weight", False), p("x.1.bias")]
    assert frozen_layout(bitfit, types) == ([], ["x.0", "x.1"], [])
    odd = [p("x.0.weight", False), p("x.0.bias"), p("x.1.weight"), p("x.1.bias")]
    assert frozen_layout(odd, types) == ([], [], ["x.0"])


def flow(*paths, types=()):
    return GradFlow((), tuple(ModuleFlow(path, "Linear", 1, False, True, True) for path in paths), tuple(types), ())


def test_missing_on_one_batch_only_is_not_structural():
    params = [p("a.weight", grads=("none", "ok")), p("b.weight")]
    assert judge(params, [flow("a", "b")], None, frozenset({"a", "b"}), None, 0.5, 6) == []


def test_no_gradient_outside_the_optimiser_reads_as_intended():
    params = [p("a.weight"), p("teacher.weight", grads=("none", "none"), opt=False)]
    (verdict,) = judge(params, [flow("a", "teacher")], OptimizerCoverage(frozenset({"a.weight"}), 0),
                       frozenset({"a", "teacher"}), None, 0.5, 6)
    assert verdict.severity.value == "info"


def test_zero_gradients_defer_to_dead_layers():
    params = [p("a.weight", grads=("zero", "zero")), p("b.weight")]
    assert judge(params, [flow("a", "b")], None, frozenset({"a", "b"}), "relu", 0.5, 6) == []
    (verdict,) = judge(params, [flow("a", "b")], None, frozenset({"a", "b"}), None, 0.5, 6)
    assert verdict.severity.value == "warning"


# -- structural zero gradients: a parameter the loss does not depend on --------------------------
SIAMESE = """
g = torch.Generator().manual_seed(0)
A = torch.randn(128, 6, generator=g)
B = A + 0.3 * torch.randn(128, 6, generator=g) * (torch.rand(128, 1, generator=g) < 0.5)
same = (B - A).abs().sum(1).lt(0.01).long()

class Siamese(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, pair):
        # the tower's last bias is added to both outputs and cancels in the difference
        return self.head((self.tower(pair[:, 0]) - self.tower(pair[:, 1])).abs())

def dldoctor_spec():
    return {"model": Siamese, "train_loader": DataLoader(TensorDataset(torch.stack([A, B], 1), same), batch_size=32),
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2)}
"""


def test_a_bias_that_cancels_by_construction_is_information_only(make_project):
    (info,) = run(make_project, SIAMESE)
    assert info.severity.value == "info" and info.location == "tower.2", info
    assert "no effect on the loss" in info.title
    assert info.metrics["max_relative_loss_change"] < 1e-5


def test_a_zero_gradient_through_a_hard_decision_is_still_reported(make_project):
    # round() has a zero derivative, but perturbing fc1 changes the rounded values and the loss
    found = run(make_project, body(forward="return self.fc2(torch.round(self.fc1(x)))"))
    assert [f.severity.value for f in found] == ["warning"] and "exactly-zero" in found[0].title


# -- a frozen output layer: the fit decides --------------------------------------------------
FROZEN_BY_TYPE = """
        for m in self.modules():  # meant for the feature layer; the head is a Linear too
            if isinstance(m, nn.Linear):
                m.requires_grad_(False)
        self.norm = nn.LayerNorm(16)"""


def test_frozen_output_that_cannot_fit_is_an_error_naming_the_head(make_project):
    text = body(init=FROZEN_BY_TYPE, forward="return self.fc2(torch.relu(self.norm(self.fc1(x))))",
                optimizer="lambda p: torch.optim.Adam([q for q in p if q.requires_grad], lr=1e-2)")
    (error,) = run(make_project, text)
    assert error.severity.value == "error" and error.location == "fc2", error
    assert error.metrics["trainable_values"] == 32  # the LayerNorm's weight and bias
    evidence = " ".join(error.evidence)
    assert "with every parameter trainable" in evidence and "converged" in evidence
    assert "fc1 (Linear), fc2 (Linear)" in evidence


def test_off_by_one_freeze_leaving_only_the_head_bias_is_an_error(make_project):
    text = body(init="for q in list(self.parameters())[:-1]:\n            q.requires_grad_(False)")
    (error,) = run(make_project, text)
    assert error.severity.value == "error" and error.location == "fc2", error
    assert any("frozen in part (weight requires_grad=False)" in e for e in error.evidence)


def test_a_fixed_output_layer_that_still_fits_is_information(make_project):
    # a fixed random classifier on a trainable feature layer: it fits the batch as given
    text = body(init="self.fc1 = nn.Linear(8, 64); self.fc2 = nn.Linear(64, 2); self.fc2.requires_grad_(False)")
    found = run(make_project, text)
    assert found and all(f.severity.value == "info" for f in found), found


def test_frozen_suspect_asks_only_about_a_frozen_output():
    types = {"enc": "Linear", "head": "Linear"}
    backbone = [p("enc.weight", False), p("enc.bias", False), p("head.weight"), p("head.bias")]
    assert not frozen_suspect(backbone, types, "head")
    head = [p("enc.weight"), p("enc.bias"), p("head.weight", False), p("head.bias", False)]
    assert frozen_suspect(head, types, "head")
    assert not frozen_suspect([p("enc.weight", False), p("head.weight", False)], types, "head")  # nothing trains


def test_judge_turns_the_frozen_information_into_an_error_only_when_unfreezing_fits():
    types = (("enc", "Linear"), ("head", "Linear"))
    params = [p("enc.weight"), p("enc.bias"), p("head.weight", False), p("head.bias", False)]
    flows = [GradFlow((), (), types, ())]
    called = frozenset({"enc", "head"})
    fails = FrozenFit("plateau", "converged", fails=True, fixed=True, steps=200)
    (error,) = judge(params, flows, None, called, None, 0.5, 6, frozen_fit=fails, output="head")
    assert error.severity.value == "error" and error.location == "head"
    for fit in (FrozenFit("converged", "", fails=False, fixed=False, steps=200),
                FrozenFit("plateau", "plateau", fails=True, fixed=False, steps=200)):
        (info,) = judge(params, flows, None, called, None, 0.5, 6, frozen_fit=fit, output="head")
        assert info.severity.value == "info"


def test_judge_reads_no_effect_parameters_as_information():
    params = [p("a.weight"), p("a.bias", grads=("zero", "zero")), p("b.weight")]
    flows = [flow("a", "b")]
    (warning,) = judge(params, flows, None, frozenset({"a", "b"}), None, 0.5, 6)
    assert warning.severity.value == "warning"
    (info,) = judge(params, flows, None, frozenset({"a", "b"}), None, 0.5, 6, no_effect={"a.bias": 1e-8})
    assert info.severity.value == "info" and info.location == "a"
