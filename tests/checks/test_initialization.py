"""The initialization check: bad inits and dead ReLUs at step 0 are found and localised; sane inits are silent."""

import math

import pytest

from dldoctor.checks.running.initialization import judge_dead, judge_init, judge_loss, merge_issues
from dldoctor.probes.init_stats import InitStats, LayerInit, LossAtInit
from tests.conftest import diagnose_file

SPEC = """
g = torch.Generator().manual_seed(0)
X = {x}
y = {y}

def mlp(depth=3, width=64, act=nn.ReLU, d_in=16, d_out=4):
    layers, d = [], d_in
    for _ in range(depth - 1):
        layers += [nn.Linear(d, width), act()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, d_out))

def init_linear(model, fn):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            fn(m)
    return model

{extra}

def dldoctor_spec():
    return {{
        "model": lambda: {model},
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=64),
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
    }}
"""

X16 = "torch.randn(256, 16, generator=g)"
Y4 = "torch.randint(0, 4, (256,), generator=g)"
CE = "nn.CrossEntropyLoss()"


def run(make_project, model, x=X16, y=Y4, loss=CE, extra=""):
    path = make_project(SPEC.format(x=x, y=y, model=model, loss=loss, extra=extra))
    return {f.id: f for f in diagnose_file(path, select=("initialization",)).diagnoses}


BAD = {
    "normal(0, 1) weights": dict(
        model="init_linear(mlp(5), lambda m: nn.init.normal_(m.weight, 0, 1))",
        title="grow", location="model[0]", severity="error", fix="kaiming_normal_(model[0].weight"),
    "huge last layer": dict(
        model="init_linear(mlp(2), lambda m: nn.init.normal_(m.weight, 0, 0.5) if m.out_features == 4 else None)",
        title="far above the expected 1.39", location="model[2]", severity="warning", fix="std=0.01"),
    "std=1e-3 in a deep net": dict(
        model="init_linear(mlp(6), lambda m: nn.init.normal_(m.weight, 0, 1e-3))",
        title="signal", location="model[0]", severity="error", fix="kaiming_normal_"),
    "constant weights": dict(
        model="init_linear(mlp(3), lambda m: nn.init.constant_(m.weight, 0.02))",
        title="compute the same function", location="model[0]", severity="error", fix="randomly"),
    "saturated tanh": dict(
        model="init_linear(mlp(3, act=nn.Tanh), lambda m: nn.init.normal_(m.weight, 0, 1))",
        title="saturated", location="model[1]", severity="error", fix="calculate_gain('tanh')"),
    "regression outputs far too large": dict(
        model="init_linear(mlp(2, d_out=1), lambda m: nn.init.normal_(m.weight, 0, 1))",
        y="X[:, :1] * 0.5", loss="nn.MSELoss()",
        title="that of predicting zero", location="model[0]", severity="error", fix="kaiming_normal_"),
    "single-output head with uniform_ (all positive) weights": dict(
        model="init_linear(mlp(3, width=128, d_out=1), lambda m: nn.init.uniform_(m.weight) "
              "if m.out_features == 1 else None)",
        y="X[:, :1] * 0.5", loss="nn.MSELoss()",
        title="that of predicting zero", location="model[4]", severity="error", fix="std=0.01"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_initialization_is_found_and_localised(make_project, name):
    case = dict(BAD[name])
    expected = {k: case.pop(k) for k in ("title", "location", "severity", "fix")}
    findings = run(make_project, **case)
    finding = findings["bad-initialization"]
    assert expected["title"] in finding.title, finding.title
    assert finding.location == expected["location"]
    assert finding.severity.value == expected["severity"]
    assert expected["fix"] in finding.fixes[0], finding.fixes


def test_huge_logits_quote_the_expected_loss(make_project):
    finding = run(make_project, BAD["normal(0, 1) weights"]["model"])["bad-initialization"]
    assert any("expected ≈ ln(4) = 1.39" in e for e in finding.evidence)
    assert any("initial logits are too large" in e for e in finding.evidence)
    assert finding.metrics["loss_at_init"] > 100 and math.isclose(finding.metrics["expected_loss"], math.log(4),
                                                                    rel_tol=1e-4)


def test_negative_bias_kills_relus(make_project):
    findings = run(make_project, "init_linear(mlp(3), lambda m: nn.init.constant_(m.bias, -3.0))")
    assert set(findings) == {"dead-activations"}
    finding = findings["dead-activations"]
    assert finding.location == "model[1]" and finding.severity.value == "error"
    assert finding.metrics["dead_unit_frac"] >= 0.95
    assert "bias of model[0]" in finding.fixes[0]
    assert any(e.startswith("also dead: model[3]") for e in finding.evidence)


def test_units_of_a_sequence_layer_are_its_last_axis(make_project):
    # [N, T, D] activations: 24 of 32 features never fire, but every time step has live features.
    extra = ("def seq_model():\n"
             "    m = nn.Sequential(nn.Unflatten(1, (4, 4)), nn.Linear(4, 32), nn.ReLU(), nn.Flatten(), "
             "nn.Linear(128, 4))\n"
             "    with torch.no_grad():\n"
             "        m[1].bias.copy_(torch.tensor([-5.0] * 24 + [5.0] * 8))\n"
             "    return m\n")
    finding = run(make_project, "seq_model()", extra=extra)["dead-activations"]
    assert finding.location == "model[2]" and finding.metrics["dead_unit_frac"] == 0.75


RESIDUAL = """
class Residual(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.inp = nn.Linear(16, width)
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        nn.init.zeros_(self.branch[2].weight)
        nn.init.zeros_(self.branch[2].bias)
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + self.branch(h))

class SeqModel(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.rnn(x.view(x.shape[0], 4, 4).repeat(1, 1, 4))[0][:, -1])
"""

HEALTHY = {
    "default deep MLP": dict(model="mlp(8)"),
    "kaiming deep MLP": dict(model="init_linear(mlp(8), lambda m: (nn.init.kaiming_normal_(m.weight), "
                                   "nn.init.zeros_(m.bias)))"),
    "xavier tanh MLP": dict(model="init_linear(mlp(4, act=nn.Tanh), lambda m: nn.init.xavier_uniform_(m.weight))"),
    "batch-norm CNN": dict(model="nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 8, 3, padding=1), "
                                 "nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), "
                                 "nn.ReLU(), nn.Flatten(), nn.Linear(128, 4))"),
    "imbalanced 80/20 cross-entropy": dict(model="mlp(3, d_out=2)",
                                           y="(torch.rand(256, generator=g) < 0.2).long()"),
    "imbalanced BCE with a prior bias": dict(
        model="init_linear(mlp(3, d_out=1), lambda m: nn.init.constant_(m.bias, -1.386) if m.out_features == 1 "
              "else None)",
        y="(torch.rand(256, 1, generator=g) < 0.2).float()", loss="nn.BCEWithLogitsLoss()"),
    "unit-scale regression": dict(model="mlp(3, d_out=1)", y="X[:, :1] + 0.1 * torch.randn(256, 1, generator=g)",
                                  loss="nn.MSELoss()"),
    "zero-initialised last layer": dict(model="init_linear(mlp(4), lambda m: (nn.init.zeros_(m.weight), "
                                              "nn.init.zeros_(m.bias)) if m.out_features == 4 else None)"),
    "zero-initialised residual branch": dict(model="Residual()", extra=RESIDUAL),
    "LSTM": dict(model="SeqModel(nn.LSTM)", extra=RESIDUAL),
    "GRU": dict(model="SeqModel(nn.GRU)", extra=RESIDUAL),
    "transformer": dict(model="nn.Sequential(nn.Unflatten(1, (4, 4)), nn.Linear(4, 32), nn.TransformerEncoder("
                              "nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2), nn.Flatten(), "
                              "nn.Linear(128, 4))"),
    "heavy dropout": dict(model="nn.Sequential(nn.Dropout(0.9), nn.Linear(16, 256), nn.ReLU(), nn.Dropout(0.9), "
                                "nn.Linear(256, 4))"),
}


SIAMESE = """
class CosinePairs(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.scale = scale

    def forward(self, x):
        a, b = self.embed(x[:, :8]), self.embed(x[:, 8:])
        return self.scale * nn.functional.cosine_similarity(a, b, dim=1)

class TwoTowers(nn.Module):
    def __init__(self, temperature=0.07):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 16))
        self.b = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 16))
        self.temperature = temperature

    def forward(self, x):  # x [N, 36]: the anchor's 4 features, then 8 candidates' 4 each
        a = nn.functional.normalize(self.a(x[:, :4]), dim=-1)
        b = nn.functional.normalize(self.b(x[:, 4:].reshape(-1, 8, 4)), dim=-1)
        return (b * a.unsqueeze(1)).sum(-1) / self.temperature
"""

PRE_LN = """
class PreLN(nn.Module):
    def __init__(self, std, d=32, hidden=64, blocks=3):
        super().__init__()
        self.stem = nn.Linear(16, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(blocks))
        self.branches = nn.ModuleList(nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                                    nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                                    nn.Linear(hidden, d)) for _ in range(blocks))
        self.head = nn.Linear(d, 4)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.stem(x)
        for norm, branch in zip(self.norms, self.branches):
            x = x + branch(norm(x))
        return self.head(x)
"""

BAD.update({
    # Branches of gain ~10 per layer swamp the stream: no skip path carries the signal.
    "residual blocks at N(0, 1)": dict(model="PreLN(1.0)", extra=PRE_LN, title="", location="branches.0.0",
                                       severity="error", fix=""),
})

HEALTHY.update({
    # N(0, 0.02) as in transformer code: each 4-layer branch shrinks its own signal ~3000x,
    # but the stream keeps its scale through the skip paths.
    "pre-LN residual blocks at N(0, 0.02)": dict(model="PreLN(0.02)", extra=PRE_LN),
    # Setups whose loss at init is far above the uniform one under any standard init: the
    # default re-initialisation reproduces it, so it is not the initial weights' doing.
    "siamese pairs scored by a scaled cosine (BCE)": dict(
        model="CosinePairs(10.0)", extra=SIAMESE, loss="nn.BCEWithLogitsLoss()",
        y="(torch.rand(256, generator=g) < 0.5).float()"),
    "two-tower contrastive logits with temperature 0.07": dict(
        model="TwoTowers()", extra=SIAMESE, x="torch.randn(256, 36, generator=g)",
        y="torch.randint(0, 8, (256,), generator=g)"),
    "single-output regression on targets of rms 0.01": dict(
        model="mlp(2, d_out=1)", y="0.01 * torch.randn(256, 1, generator=g)", loss="nn.MSELoss()"),
    "single-output L1 regression on small targets": dict(
        model="mlp(3, d_out=1)", y="0.02 * X[:, :1]", loss="nn.L1Loss()"),
})


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_sane_initialisations_are_silent(make_project, name):
    assert run(make_project, **HEALTHY[name]) == {}, name


# -- the judging functions on their own -------------------------------------------

THRESHOLDS = dict(loss_excess_warn_nats=1.0, loss_excess_error_nats=5.0, loss_ratio_warn=10.0,
                  loss_ratio_error=100.0, vanish_total=1e-3, vanish_gain=0.25, vanish_total_error=1e-6,
                  explode_total=100.0, explode_gain=3.0, explode_total_error=1e4, symmetry_ratio=1e-3,
                  saturated_warn=0.25, dead_warn=0.6, dead_error=0.95, dead_min_values=16, residual_correlation=0.5)


def layer(path, role, **kw):
    base = dict(type_name={"linear": "Linear", "relu": "ReLU"}.get(role, "Other"), call=0, out_shape=(64, 8),
                units=8, values_per_unit=64, out_rms=1.0, mean=0.0, unit_mean_spread=0.5, signal=1.0, diversity=1.0)
    base.update(kw)
    return LayerInit(path=path, role=role, **base)


def test_loss_judge_uses_the_uniform_prediction_loss():
    def stats(value):
        return InitStats(layers=(layer("0", "linear", in_signal=1.0),),
                         loss=LossAtInit("logits", value, math.log(10), 2.2, 10, 3.0), samples=128, batches=2)
    assert judge_loss(stats(math.log(10) + 0.5), THRESHOLDS) is None
    warning = judge_loss(stats(math.log(10) + 2), THRESHOLDS)
    error = judge_loss(stats(46.1), THRESHOLDS)
    assert warning.severity.value == "warning" and error.severity.value == "error"
    assert "loss at init 46.1, expected ≈ ln(10) = 2.3" in error.evidence[0]
    assert "class frequencies of these batches would give 2.2" in error.evidence[0]


def test_a_loss_the_default_init_reproduces_is_not_the_initialisations_doing():
    def stats(value, default, kind="logits", ref=None):
        ref = math.log(10) if ref is None else ref
        loss = LossAtInit(kind, value, ref, ref, 10 if kind == "logits" else None, 3.0, target_rms=0.01,
                          default_init_loss=default)
        return InitStats(layers=(layer("0", "linear", in_signal=1.0),), loss=loss, samples=128, batches=2)
    # 4 nats above ln(10), but a default-initialised copy gives 3.9 of them (a temperature).
    assert judge_loss(stats(6.3, 6.2), THRESHOLDS) is None
    # 4 nats above ln(10), of which the default init gives none: the init's doing.
    found = judge_loss(stats(6.3, 2.35), THRESHOLDS)
    assert found is not None and found.severity.value == "warning"
    assert any("re-initialising a copy with PyTorch's defaults gives a loss of 2.35" in e for e in found.evidence)
    assert found.metrics["default_init_loss"] == 2.35
    # Regression: 1000x predicting zero, and 1000x a default head too / only 1.2x of it.
    assert judge_loss(stats(0.12, 0.1, "squared", 1e-4), THRESHOLDS) is None
    found = judge_loss(stats(0.12, 1.2e-4, "squared", 1e-4), THRESHOLDS)
    assert found is not None and found.severity.value == "error"
    # Without the default-init measurement the judge falls back to the reference alone.
    assert judge_loss(stats(6.3, None), THRESHOLDS) is not None


def _branch_chain(skips=(), follows=None):
    """A stem, then a pre-LN attention branch in ``blocks.0`` (q/k/v/o; the spread falls
    1600x from q's input to o's input), then the next LayerNorm and the head."""
    layers = (layer("stem", "linear", in_signal=1.0, signal=0.5),
              layer("blocks.0.ln", "norm"),
              layer("blocks.0.q", "linear", in_signal=1.0, signal=0.08),
              layer("blocks.0.k", "linear", in_signal=1.0, signal=0.08),
              layer("blocks.0.v", "linear", in_signal=1.0, signal=0.08),
              layer("blocks.0.o", "linear", in_signal=6e-4, signal=5e-5),
              layer("ln_f", "norm", follows=follows),
              layer("head", "linear", in_signal=1.0))
    return InitStats(layers=layers, loss=None, samples=64, batches=1, skips=skips)


def test_a_residual_branch_is_not_read_as_layers_in_series():
    # Without a skip measurement the branch's layers form a chain in series: vanishing.
    merged = merge_issues(judge_init(_branch_chain(), THRESHOLDS))
    assert merged["bad-initialization"]["metrics"]["issues"] == "vanishing"
    assert merged["bad-initialization"]["location"] == "blocks.0.q"
    # blocks.0's output follows its input (correlation 0.98): a skip path, its layers a branch.
    assert judge_init(_branch_chain(skips=(("blocks.0", 0.98),)), THRESHOLDS) == []
    # Or: the LayerNorm after the branch gets an input that follows the previous one's.
    assert judge_init(_branch_chain(follows=0.97), THRESHOLDS) == []
    # Containers and norms without a skip (correlation ~0) leave the chain as it is.
    assert judge_init(_branch_chain(skips=(("blocks.0", 0.02),), follows=0.01), THRESHOLDS) != []


def test_the_probe_measures_skip_paths(make_project):
    import torch
    from torch import nn

    from dldoctor.probes.init_stats import measure_init

    class Block(nn.Module):
        def __init__(self, residual):
            super().__init__()
            self.fc, self.residual = nn.Linear(16, 16), residual

        def forward(self, x):
            return x + self.fc(x) if self.residual else self.fc(x)

    torch.manual_seed(0)
    model = nn.Sequential(Block(True), Block(False))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
    batches = [(torch.randn(64, 16), torch.randint(0, 16, (64,)))]
    stats = measure_init(model, batches, lambda m, b: (m(b[0]), b[1]), nn.CrossEntropyLoss())
    skips = dict(stats.skips)
    assert skips["0"] > 0.99 and abs(skips["1"]) < 0.2


def test_dead_units_downstream_of_a_signal_less_layer_are_not_blamed_on_the_relu():
    layers = (layer("0", "linear", in_signal=1.0, signal=0.0, out_rms=0.5, weight_std=0.0, default_weight_std=0.1),
              layer("1", "relu", signal=0.0, dead_unit_frac=0.5),
              layer("2", "linear", in_signal=0.0, signal=0.0),
              layer("3", "relu", signal=0.0, dead_unit_frac=1.0),
              layer("4", "linear", in_signal=0.0))
    stats = InitStats(layers=layers, loss=None, samples=64, batches=1)
    assert judge_dead(stats, THRESHOLDS) is None
    merged = merge_issues(judge_init(stats, THRESHOLDS))
    assert set(merged) == {"bad-initialization"} and merged["bad-initialization"]["location"] == "model[0]"


def test_too_few_values_per_unit_do_not_make_a_dead_unit():
    layers = (layer("0", "linear", in_signal=1.0, bias_mean=-3.0, mean=-3.0),
              layer("1", "relu", dead_unit_frac=1.0, values_per_unit=8),
              layer("2", "linear", in_signal=0.1))
    assert judge_dead(InitStats(layers=layers, loss=None, samples=8, batches=1), THRESHOLDS) is None


def _shrinking_chain(norm_between: bool):
    """Two linear maps shrinking the spread 10x each, then (maybe) a LayerNorm, then two more
    whose input varies little across samples (as a transformer's [CLS] position does at init)."""
    norm = (layer("n", "norm"),) if norm_between else ()
    layers = (layer("0", "linear", in_signal=1.0, signal=0.1),
              layer("1", "linear", in_signal=0.1, signal=0.01),
              *norm,
              layer("2", "linear", in_signal=5e-4, signal=1e-4),
              layer("3", "linear", in_signal=4e-4))
    return InitStats(layers=layers, loss=None, samples=64, batches=1)


def test_a_normalisation_layer_resets_the_depth_judgement():
    # Without the norm, the spread falls 2500x over layers of gain 0.1-0.2: vanishing.
    merged = merge_issues(judge_init(_shrinking_chain(norm_between=False), THRESHOLDS))
    assert merged["bad-initialization"]["metrics"]["issues"] == "vanishing"
    # With it, each run between norms shrinks the spread 10x and 1.25x: the weights before a
    # LayerNorm do not set the scale after it.
    assert judge_init(_shrinking_chain(norm_between=True), THRESHOLDS) == []


def test_a_random_init_hugging_face_bert_is_healthy():
    """std-0.02 weights with a LayerNorm after every residual: trains (100% on a toy task), so silent."""
    transformers = pytest.importorskip("transformers", reason="optional test dependency (requirements-optional.txt)")
    import torch
    import torch.nn.functional as F

    from dldoctor.probes.init_stats import measure_init

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    batches = []
    for _ in range(4):
        ids = torch.randint(3, 64, (32, 16))
        ids[:, 0] = 1
        batches.append(({"input_ids": ids}, torch.randint(0, 2, (32,))))
    stats = measure_init(model, batches, lambda m, b: (m(**b[0]).logits, b[1]), F.cross_entropy)
    assert [(issue.id, issue.title) for issue in judge_init(stats, THRESHOLDS)] == []
