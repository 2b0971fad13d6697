"""Differential experiments on the short run: rerun it with one change, name the change that cures it."""

import pytest

from dldoctor.core.config import load_config
from dldoctor.probes.training.short import Budget, EpochRecord, SplitScore, TrainingRun
from dldoctor.readings import shortfall
from tests.conftest import diagnose_file

pytestmark = pytest.mark.slow

CHECK = "training-experiments"

REGRESSION = """\
from sklearn.datasets import load_diabetes

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        self.out = {activation}

    def forward(self, x):
        return self.out(self.body(x))

def dldoctor_spec():
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    y = {targets}
    train, val = torch.arange(0, 340), torch.arange(340, len(X))
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=128),
        "loss_fn": nn.MSELoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr={lr}),
        "irreducible_error": 0.45,
    }}
"""

DIGITS = """\
from sklearn.datasets import load_digits

def dldoctor_spec():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    train, val = torch.arange(0, 1400), torch.arange(1400, len(X))
    return {{
        "model": lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                       nn.Flatten(), nn.Linear(64, 10)),
        "train_loader": DataLoader(TensorDataset(X[train], y[train]), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(X[val], y[val]), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: {optimizer},
    }}
"""


def experiment_findings(path):
    diagnosis = diagnose_file(path, select=(CHECK, "baselines", "bias-variance"))
    ran = next(c for c in diagnosis.checks if c.name == CHECK)
    assert ran.status.value in ("passed", "failed"), (ran.status, ran.reason)
    return diagnosis, [f for f in diagnosis.diagnoses if CHECK in f.checks]


def test_a_learning_rate_too_small_for_the_targets_scale_is_lr_too_low_and_explains_the_baseline(make_project):
    path = make_project(REGRESSION.format(activation="nn.Identity()", targets="y", lr="1e-3"))
    diagnosis, [found] = experiment_findings(path)
    assert found.id == "lr-too-low" and found.location == "optimizer"
    assert found.metrics["experiment_score"] < found.metrics["main_score"] / 1.5
    assert any("10x higher" in e for e in found.evidence) and any("10x lower" in e for e in found.evidence)
    baseline = next(f for f in diagnosis.diagnoses if f.id == "worse-than-baseline")
    assert baseline.explained_by == "lr-too-low" and baseline.rank > found.rank


def test_a_sigmoid_that_cannot_reach_standardised_targets_is_a_dead_output(make_project):
    path = make_project(REGRESSION.format(activation="nn.Sigmoid()", targets="(y - y.mean()) / y.std()",
                                          lr="3e-3"))
    _, found = experiment_findings(path)
    assert [f.id for f in found] == ["dead-activations"]
    assert found[0].location == "out"
    assert any("outside the Sigmoid's range [0, 1]" in e for e in found[0].evidence)


def test_a_sigmoid_on_targets_inside_its_range_is_never_removed(make_project):
    path = make_project(REGRESSION.format(activation="nn.Sigmoid()", targets="(y - y.min()) / (y.max() - y.min())",
                                          lr="3e-3"))
    _, found = experiment_findings(path)
    assert found == [], [f.title for f in found]


def test_weight_decay_that_holds_the_whole_run_down_is_over_regularization(make_project):
    path = make_project(DIGITS.format(optimizer="torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.05)"))
    _, found = experiment_findings(path)
    assert [f.id for f in found] == ["over-regularization"]
    assert "weight decay and dropout off" in found[0].title


def test_a_healthy_run_runs_no_experiment_and_says_nothing(make_project):
    path = make_project(DIGITS.format(optimizer="torch.optim.Adam(p, lr=3e-3)"))
    _, found = experiment_findings(path)
    assert found == []


# -- the reading, on recorded numbers ------------------------------------------------------------
def record(train, val, loss=None, samples=200):
    loss = loss or [1.0] * len(train)
    epochs = tuple(EpochRecord(i + 1, 10 * (i + 1), 1.0, SplitScore(lo, t, samples), SplitScore(lo, v, samples), None)
                   for i, (t, v, lo) in enumerate(zip(train, val, loss)))
    return TrainingRun(epochs=epochs, stopped_by="epochs", error_name="1 - accuracy", parameters=10,
                       budget=Budget(5, 800, 30.0))


CONFIG = load_config().values


def test_a_run_that_diverges_after_progress_falls_short_even_with_a_good_final_error():
    run = record([0.3, 0.1, 0.08, 0.2, 0.3], [0.3, 0.1, 0.08, 0.2, 0.3], loss=[1.0, 0.3, 0.25, 0.9, 2.5])
    falls = shortfall.read_shortfall(run, shortfall.run_score(run), None, None, CONFIG)
    assert falls.diverged_at == 4


def test_a_run_still_improving_is_given_the_benefit_of_the_doubt():
    run = record([0.6, 0.45, 0.35, 0.28, 0.22], [0.6, 0.45, 0.35, 0.28, 0.22])
    assert not shortfall.read_shortfall(run, shortfall.run_score(run), None, None, CONFIG)


def test_a_rerun_must_beat_the_noise_the_margin_and_a_share_of_the_error():
    main = shortfall.Score(0.30, 200, "1 - accuracy", "val")
    near = shortfall.Rerun("lr/10", "x", "lr-too-high", shortfall.Score(0.26, 200, "1 - accuracy", "val"), None, 0.04)
    far = shortfall.Rerun("lr*10", "y", "lr-too-low", shortfall.Score(0.12, 200, "1 - accuracy", "val"), None, 0.18)
    diverging = shortfall.Rerun("no-regularization", "z", "over-regularization",
                                shortfall.Score(0.05, 200, "1 - accuracy", "val"), 3, 0.25)
    assert shortfall.cure(main, [near], 0.02, 0.25) is None  # 0.04 < two standard errors (0.092)
    assert shortfall.cure(main, [near, far, diverging], 0.02, 0.25) is far  # a rerun that diverges cures nothing


class _Baselines:
    constant, constant_name, linear = 0.9, "majority class", 0.10


def test_a_run_that_fits_its_training_data_falls_short_in_generalisation_not_in_fit():
    """Train error 0.03, val 0.22 against a linear model's 0.10: the shortfall is the gap."""
    run = record([0.30, 0.10, 0.05, 0.04, 0.03], [0.39, 0.26, 0.24, 0.225, 0.22])
    falls = shortfall.read_shortfall(run, shortfall.run_score(run), _Baselines(), None, CONFIG)
    assert falls.baseline and falls.fits_training_data and falls.beat_below > 0.10
    under = record([0.60, 0.50, 0.45, 0.42, 0.40], [0.62, 0.52, 0.47, 0.44, 0.42])
    falls_under = shortfall.read_shortfall(under, shortfall.run_score(under), _Baselines(), None, CONFIG)
    assert not falls_under.fits_training_data


def test_a_rerun_that_levels_off_behind_the_baseline_does_not_cure_it():
    run = record([0.60, 0.50, 0.45, 0.42, 0.40], [0.62, 0.52, 0.47, 0.44, 0.42])
    falls = shortfall.read_shortfall(run, shortfall.run_score(run), _Baselines(), None, CONFIG)
    main = shortfall.run_score(run)
    flat = shortfall.rerun("lr*10", "x", "lr-too-low", record([0.3] * 5, [0.40, 0.31, 0.30, 0.30, 0.30]), main,
                           CONFIG["epochs"], falls, 0.005)
    closing = shortfall.rerun("lr*10", "x", "lr-too-low", record([0.3] * 5, [0.60, 0.50, 0.40, 0.30, 0.20]), main,
                              CONFIG["epochs"], falls, 0.005)
    assert not flat.reaches and closing.reaches
    assert shortfall.cure(main, [flat], 0.02, 0.25) is None
    assert shortfall.cure(main, [closing], 0.02, 0.25) is closing
