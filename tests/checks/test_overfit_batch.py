"""Stage 2 on tiny models: each experiment's verdict, and silence on models that fit."""

import math
import operator

import pytest

from tests.conftest import diagnose_file

BASE = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
W = torch.randn(8, 3, generator=g)
y = (X @ W).argmax(1)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3){extra_layers})

    def forward(self, x):
        return self.body(x)

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": {loss},
        "optimizer": lambda p: {optimizer},
    }}
"""


def project(make_project, optimizer, loss="nn.CrossEntropyLoss()", extra_layers=""):
    return make_project(BASE.format(optimizer=optimizer, loss=loss, extra_layers=extra_layers))


def top(diagnosis):
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    return alarms[0] if alarms else None


STAGE2 = ("overfit-batch", "gradient-dynamics", "label-signal")


def test_a_model_that_fits_passes_without_experiments(make_project):
    measurements = {}
    from dldoctor.core.runner import RunOptions, diagnose

    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)")
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", select=STAGE2), measurements=measurements)
    assert top(diagnosis) is None
    curves = [k for k in measurements if k.startswith("overfit:") and "lr_scale" in k]
    assert len(curves) == 1, curves  # the baseline only


def test_lr_too_high_is_confirmed_by_a_smaller_lr(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=30.0)"), select=STAGE2))
    assert finding.id == "lr-too-high"
    assert any("with lr x0.1" in e or "with lr x0.01" in e for e in finding.evidence)
    assert finding.metrics["fixed_lr"] < 30.0


@pytest.mark.slow
def test_lr_too_low_is_confirmed_by_a_larger_lr(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=1e-4)"), select=STAGE2))
    assert finding.id == "lr-too-low"
    assert finding.metrics["fixed_lr"] > 1e-4


@pytest.mark.slow
def test_sign_flip_is_confirmed_by_minimising_the_negated_loss(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.SGD(p, lr=0.1, maximize=True)"),
                                select=STAGE2))
    assert finding.id == "loss-sign-flipped"
    assert any("negated loss" in e for e in finding.evidence)


@pytest.mark.slow
def test_over_regularization_is_confirmed_with_decay_off(make_project):
    finding = top(diagnose_file(project(make_project, "torch.optim.AdamW(p, lr=1e-2, weight_decay=50.0)"),
                                select=STAGE2))
    assert finding.id == "over-regularization"


@pytest.mark.slow
def test_model_too_small_fits_few_samples_but_not_the_batch(make_project):
    path = make_project(BASE.format(optimizer="torch.optim.Adam(p, lr=1e-2)", loss="nn.CrossEntropyLoss()",
                                    extra_layers="").replace("nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)",
                                                             "nn.Linear(8, 1), nn.Linear(1, 3)")
                        .replace("W = torch.randn(8, 3, generator=g)\ny = (X @ W).argmax(1)",
                                 "y = torch.randint(0, 3, (256,), generator=g)"))
    finding = top(diagnose_file(path, select=("overfit-batch",)))
    assert finding.id == "model-too-small"


@pytest.mark.slow
def test_labels_that_do_not_depend_on_inputs(make_project):
    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)").read_text().replace(
        "y = (X @ W).argmax(1)", "y = (X @ W).argmax(1)[torch.randperm(256, generator=g)]")
    target = make_project(path.split("from torch.utils.data import DataLoader, TensorDataset\n", 1)[1],
                          name="labels_train.py")
    finding = top(diagnose_file(target, select=STAGE2))
    assert finding.id == "labels-corrupted"
    assert finding.metrics["loss_real_labels"] >= 0.9 * finding.metrics["loss_permuted_labels"]



@pytest.mark.slow
def test_a_step_too_large_for_several_batches_is_not_blamed_on_the_labels():
    """An Elman RNN at lr 0.05 with momentum learns real and shuffled labels equally badly
    across batches, because its steps are too large: its gradients overflow on the single
    batch (step 44 of the baseline), and the label-signal runs then show nothing about the
    labels. The step size is named; the labels are not accused."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "bugs" / "fit_explode_elman_regression.py"
    diagnosis = diagnose_file(path, select=STAGE2)
    assert top(diagnosis).id in ("exploding-gradients", "lr-too-high")
    assert "labels-corrupted" not in [f.id for f in diagnosis.diagnoses]

def test_the_heldout_advantage_needs_more_than_the_heldout_noise():
    from dldoctor.checks.overfit.label_signal import heldout_advantage, reached_chance

    # Shuffled-label zoo case: 0.090 against the best constant's 0.11 and the shuffled run's 0.15.
    gain, margin = heldout_advantage(0.090, (0.11, 0.152), 256, "accuracy", 2.0)
    assert gain < margin
    # Shuffled labels, a lucky 0.42: the held-out set's own majority class scores 0.42 too.
    assert not operator.gt(*heldout_advantage(0.42, (0.42, 0.30), 128, "accuracy", 2.0))
    # Real signal: 0.64 against 0.09 on 256 samples; 0.625 against 0.547 still clears 2 standard errors.
    assert operator.gt(*heldout_advantage(0.64, (0.08, 0.09), 256, "accuracy", 2.0))
    gain, margin = heldout_advantage(0.625, (0.52, 0.547), 256, "accuracy", 2.0)
    assert gain > margin and margin == pytest.approx(0.062, abs=0.002)
    # Fewer held-out samples, a wider margin.
    assert not operator.gt(*heldout_advantage(0.625, (0.52, 0.547), 32, "accuracy", 2.0))
    # MSE: the log ratio to the lower reference against sqrt(2 / n).
    gain, margin = heldout_advantage(0.2, (1.0, 1.3), 200, "mse", 2.0)
    assert gain == pytest.approx(math.log(5)) and margin == pytest.approx(0.2)
    assert heldout_advantage(None, (0.5,), 100, "accuracy", 2.0) is None
    assert heldout_advantage(0.5, (None,), 100, "accuracy", 2.0) is None

    class Run:
        def __init__(self, metric, train_chance):
            self.metric, self.train_chance = metric, train_chance

    # A regression head still 20x off the targets' scale has not learned even their mean.
    assert reached_chance(Run([0.0030, 0.0027, 0.0026], 1.1e-4), "mse") is False
    assert reached_chance(Run([0.5, 0.9, 1.0], 0.4), "accuracy") is True
    assert reached_chance(Run([], 0.4), "accuracy") is None


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["healthy_wide_mlp_small_batches_many_classes",
                                  "healthy_bn_cnn_keras_momentum_small_batches",
                                  "healthy_siamese_digits_cosine_pairs", "healthy_returns_forecast_mse"])
def test_labels_that_generalise_are_not_blamed_however_fast_noise_is_memorised(stem):
    """A large model memorises shuffled labels as fast as real ones, and a batch-norm model read
    in eval mode after a few steps predicts at chance: neither makes the labels noise."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "bugs" / f"{stem}.py"
    diagnosis = diagnose_file(path, select=STAGE2)
    assert [f.id for f in diagnosis.diagnoses if f.check == "label-signal"] == []


@pytest.mark.slow
def test_shuffled_labels_generalise_no_better_held_out(make_project):
    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)").read_text().replace(
        "y = (X @ W).argmax(1)", "y = (X @ W).argmax(1)[torch.randperm(256, generator=g)]")
    target = make_project(path.split("from torch.utils.data import DataLoader, TensorDataset\n", 1)[1],
                          name="labels_heldout.py")
    finding = top(diagnose_file(target, select=STAGE2))
    assert finding.id == "labels-corrupted"
    m = finding.metrics
    assert m["heldout_samples"] > 0 and m["heldout_real_labels"] < m["heldout_metric"] + 0.2
    assert any("generalise no better" in e for e in finding.evidence)


WIDTH_KNOB = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = (X @ torch.randn(8, 6, generator=g)).argmax(1)   # 6 classes: linear, but not through 2 units

def dldoctor_spec(lr=1e-2, hidden=2, batch_size=64):
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 6)),
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=batch_size),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=lr),
    }
"""


def test_model_too_small_is_confirmed_by_a_larger_model_from_the_specs_own_argument(make_project):
    finding = top(diagnose_file(make_project(WIDTH_KNOB), select=("overfit-batch",)))
    assert finding.id == "model-too-small"
    # the knob is found by measurement: batch_size also grows nothing but the batch, so it is not used
    assert finding.metrics["knob"] == "hidden" and finding.metrics["scaled"] == 8
    assert finding.metrics["larger_parameters"] > 2 * finding.metrics["parameters"]
    assert any("larger model, hidden=8" in e for e in finding.evidence)


def test_larger_variant_ignores_arguments_that_change_the_batch_or_nothing(make_project):
    import torch

    from dldoctor.core.config import load_config
    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import load_target
    from dldoctor.probes.overfit.capacity import larger_variant

    body = WIDTH_KNOB.replace("hidden=2, batch_size=64", "batch_size=64, epochs=3").replace("hidden", "2")
    ctx = Context(load_target(str(make_project(body))), load_config(), torch.device("cpu"))
    assert larger_variant(ctx, 4, 64.0) is None
    ctx = Context(load_target(str(make_project(WIDTH_KNOB, name="knob.py"))), load_config(), torch.device("cpu"))
    variant = larger_variant(ctx, 4, 64.0)
    assert (variant.name, variant.value, variant.scaled) == ("hidden", 2, 8)


NEGATIVE_LOSS = BASE.replace("y = (X @ W).argmax(1)", "y = X @ W[:, 0]").replace(
    "nn.Linear(32, 3)", "nn.Linear(32, 1)").replace("return self.body(x)", "return self.body(x).squeeze(-1)")


def test_a_negative_loss_that_is_maximised_reads_as_a_sign_flip(make_project):
    # The user's loss is -MSE: it starts below zero and runs away to -inf. The negated-loss
    # experiment must be judged on the loss it minimises (MSE), not on the user's sign.
    path = make_project(NEGATIVE_LOSS.format(optimizer="torch.optim.SGD(p, lr=0.01, momentum=0.9)",
                                             loss="lambda out, y: -nn.functional.mse_loss(out, y)", extra_layers=""))
    finding = top(diagnose_file(path, select=STAGE2))
    assert finding.id == "loss-sign-flipped"
    assert finding.metrics["negated_final"] > 0


def test_a_loss_with_a_floor_is_fitted_when_every_sample_is_right(make_project):
    # Label smoothing leaves cross-entropy far above 5% of its start, yet the batch is fitted.
    path = project(make_project, "torch.optim.Adam(p, lr=1e-2)", loss="nn.CrossEntropyLoss(label_smoothing=0.3)")
    assert top(diagnose_file(path, select=STAGE2)) is None


def test_curve_helpers_read_gradient_overflow_and_metric_fit():
    from dldoctor.probes.overfit.one_batch import Curve, Setup
    from dldoctor.readings.curves import CurveReading, fitted_by_metric

    def curve(losses, grads, metric=(), first=None):
        return Curve(Setup(), tuple(losses), tuple(metric), tuple(grads), {}, {}, {}, {}, (), {}, first, 0.1, 0.0,
                     False, metric_name="accuracy" if metric else "")

    nan = float("nan")
    assert curve([1.0, 2.0, 5.0], [1.0, 3.0, nan], first=2).gradient_overflow
    assert not curve([1.0, 2.0, nan], [1.0, 3.0], first=2).gradient_overflow  # the loss went first
    assert not curve([1.0, 0.5], [1.0, 0.5]).gradient_overflow
    plateau = CurveReading("plateau", 2.3, 0.9, 0.9, 200)
    assert fitted_by_metric(curve([2.3, 0.9], [1, 1], metric=(0.9, 1.0, 1.0, 1.0)), plateau)
    assert not fitted_by_metric(curve([2.3, 0.9], [1, 1], metric=(1.0, 1.0, 0.98)), plateau)
    assert not fitted_by_metric(curve([2.3, 9.0], [1, 1], metric=(1.0, 1.0, 1.0)),
                                CurveReading("goes-up", 2.3, 9.0, 2.3, 200))


def test_a_loss_that_dips_then_stalls_is_tried_at_a_smaller_lr_last():
    # A deep ReLU regressor under plain SGD at lr=0.1: the loss dips, then stalls above its
    # best as units die; no larger lr, regularisation or capacity change helps, x0.1 does.
    from tests.conftest import REPO

    finding = top(diagnose_file(REPO / "examples" / "bugs" / "fit_dead_mlp_sgd_regression.py",
                                select=("overfit-batch",)))
    assert finding.id == "lr-too-high"
    assert "with lr x0.1" in finding.evidence[-1]
    assert finding.metrics["experiment_final"] * 2 <= finding.metrics["baseline_final"]


# -- a NaN that a smaller learning rate only delays -----------------------------------

LOG_OF_ZERO = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = ((X[:, 0] + 0.5 * torch.randn(256, generator=g)) > 0).float().view(-1, 1)

def bce_by_hand(logits, t):
    p = torch.sigmoid(logits)
    return -(t * torch.log(p) + (1 - t) * torch.log({one_minus_p})).mean()

def dldoctor_spec():
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1)),
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=64),
        "loss_fn": bce_by_hand,
        "optimizer": lambda p: torch.optim.Adam(p, lr=0.1),
    }}
"""


def test_a_log_of_zero_that_a_smaller_lr_only_delays_is_numerical_instability(make_project):
    """Sigmoid rounds to 1.0 once a logit passes ~17: log(1 - p) is -inf. At lr 0.1 that
    happens at step 9; at 0.01, past convergence, at step 88: the rate only says when."""
    path = make_project(LOG_OF_ZERO.format(one_minus_p="1 - p"))
    finding = top(diagnose_file(path, select=("overfit-batch",)))
    assert finding.id == "numerical-instability" and finding.severity.value == "error"
    m = finding.metrics
    assert m["op"] == "torch.log" and m["same_op"] and m["phase"] == "loss"
    assert m["lower_lr"] == pytest.approx(0.01) and m["lower_lr_first_nonfinite"] > m["first_nonfinite"]
    assert finding.location.startswith("train.py:") and "bce_by_hand" in finding.location
    assert "torch.log" in finding.title and any("only delays it" in e for e in finding.evidence)
    assert "clamp" in " ".join(finding.fixes)


def test_the_same_log_kept_away_from_zero_is_not_reported(make_project):
    path = make_project(LOG_OF_ZERO.format(one_minus_p="(1 - p).clamp_min(1e-6)"))
    finding = top(diagnose_file(path, select=("overfit-batch",)))
    assert finding is None or finding.id != "numerical-instability"


SOFTMAX_BY_HAND = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
W = torch.randn(8, 3, generator=g)
y = (X @ W).argmax(1)

def softmax_by_hand_nll(logits, t):
    e = torch.exp(logits)
    return -torch.log(e[torch.arange(len(t)), t] / e.sum(dim=1)).mean()

def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)),
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": softmax_by_hand_nll,
        "optimizer": lambda p: torch.optim.SGD(p, lr=30.0),
    }
"""


def test_a_nan_that_a_smaller_lr_cures_stays_lr_too_high(make_project):
    """exp overflows at step 2 with SGD at lr 30 (logits past 88); at lr 3, past
    convergence, the run stays finite for its whole re-run: the rate is the cause."""
    measurements = {}
    from dldoctor.core.runner import RunOptions, diagnose

    path = make_project(SOFTMAX_BY_HAND)
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", select=("overfit-batch",)),
                         measurements=measurements)
    assert top(diagnosis).id == "lr-too-high"
    base = next(v for k, v in measurements.items() if k.startswith("overfit:") and "lr_scale=1.0," in k)
    assert base.first_nonfinite is not None and base.nonfinite.origin.op == "torch.exp"
    [rerun] = [v for k, v in measurements.items() if "run_through=True" in k]
    assert rerun.first_nonfinite is None and rerun.steps == 200 and not rerun.stopped_early


def test_a_layer_that_overflows_is_not_rechecked(make_project):
    """Cross-entropy on logits that overflow a Linear at SGD lr 30: the values grew, which the
    usual experiments judge; the long re-run at a smaller rate is not paid for."""
    measurements = {}
    from dldoctor.core.runner import RunOptions, diagnose

    path = project(make_project, "torch.optim.SGD(p, lr=30.0)")
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", select=("overfit-batch",)),
                         measurements=measurements)
    assert top(diagnosis).id == "lr-too-high"
    assert not [k for k in measurements if "run_through=True" in k]


def test_a_loss_that_bottoms_out_below_zero_converges_towards_its_floor():
    import math

    from dldoctor.probes.overfit.experiments import convergence_target

    cfg = {"converged_abs": 0.01, "converged_rel": 0.05}
    assert convergence_target(0.2, cfg, -1.0) == pytest.approx(-1 + 0.05 * 1.2)  # a negated correlation
    assert convergence_target(-0.5, cfg, -1.0) == pytest.approx(-1 + 0.025)
    assert convergence_target(-0.5, cfg) == -math.inf  # no floor known: a negative start never converges
    assert convergence_target(2.3, cfg, 0.0) == pytest.approx(0.115)  # a floor at 0 changes nothing


def test_a_negated_correlation_that_fits_is_not_a_plateau(make_project):
    body = BASE.format(optimizer="torch.optim.Adam(p, lr=1e-2)", extra_layers=", nn.Linear(3, 1), nn.Flatten(0)",
                       loss="negative_pearson").replace(
        "y = (X @ W).argmax(1)", "y = (X @ W).sum(1)\n\n"
        "def negative_pearson(o, t):\n"
        "    o, t = o - o.mean(), t - t.mean()\n"
        "    return -(o * t).sum() / (o.norm() * t.norm() + 1e-8)\n")
    assert top(diagnose_file(make_project(body), select=STAGE2)) is None


def test_batches_joined_into_a_held_out_set_keep_a_scalar_entry_as_it_is():
    """A Hugging Face batch may carry a 0-d tensor (a count): it is not per sample, so it is
    kept from the first batch instead of being concatenated (which torch refuses)."""
    import torch

    from dldoctor.probes.overfit.experiments import _concat

    a = {"input_ids": torch.ones(2, 3), "num_items": torch.tensor(6)}
    b = {"input_ids": torch.zeros(4, 3), "num_items": torch.tensor(12)}
    joined = _concat([a, b])
    assert joined["input_ids"].shape == (6, 3) and int(joined["num_items"]) == 6
