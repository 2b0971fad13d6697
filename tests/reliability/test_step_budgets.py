"""Verdicts from step budgets, not seconds.

Every measurement a verdict reads does a number of steps (or samples) fixed by the
profile and the model. A clock that jumps 100 s at every reading (a machine slowed
to a crawl, as far as the code can tell) leaves the steps and the findings as they
are; the wall-clock limits are safety limits only, and reaching one makes the checks
that read the measurement incomplete, never a verdict about the model.
"""

from __future__ import annotations

import math
import re
import time

import pytest
import torch

from dldoctor.core.errors import CheckIncomplete
from tests.conftest import REPO, diagnose_file

SPEC = """\
g = torch.Generator().manual_seed(0)
X = torch.randn(384, 8, generator=g)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
Xv = torch.randn(128, 8, generator=g)
yv = (Xv[:, 0] + 0.5 * Xv[:, 1] > 0).long()

def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)),
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TensorDataset(Xv, yv), batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }
"""

#: The zoo case whose short run reads as under-fitting: the verdict a cut run must not give.
UNDERFIT = REPO / "examples" / "bugs" / "eval_underfit_narrow_mlp_teacher.py"
#: The checks that read the short training run's errors.
RUN_READERS = ("baselines", "reference", "bias-variance")
GENEROUS = 1e12  # a safety limit a jumping clock cannot reach


class JumpingClock:
    """Every reading is ``step`` seconds after the previous one (patched in as a module's ``time``)."""

    def __init__(self, step: float = 100.0):
        self.step, self.now, self.calls = step, 1_000.0, 0

    def _tick(self) -> float:
        self.calls += 1
        self.now += self.step
        return self.now

    perf_counter = monotonic = process_time = time = lambda self: self._tick()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


def jump(monkeypatch, *modules) -> JumpingClock:
    clock = JumpingClock()
    for module in modules:
        monkeypatch.setattr(module, "time", clock)
    return clock


def context(path, profile: str = "standard", **overrides):
    from dldoctor.core.config import Config, load_config, merge
    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import load_target

    config = load_config(path.parent, None, profile)
    nested: dict = {}
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        nested.setdefault(section, {})[key] = value
    if nested:
        config = Config(merge(dict(config.values), nested, "test"), config.profile, config.sources)
    ctx = Context(load_target(str(path), None), config, torch.device("cpu"), 0)
    ctx.prepare()
    return ctx


def signature(run):
    """What a reader of the run sees: steps per epoch, errors, how it stopped."""
    return (run.stopped_by, run.budget.steps,
            [(e.epoch, e.steps, e.train.error, e.val.error) for e in run.epochs])


def ids(diagnosis):
    return [f.id for f in diagnosis.diagnoses]


# -- the rule ------------------------------------------------------------------------------
def test_planned_steps_come_from_the_profile_and_the_model_cost():
    from dldoctor.probes.training.short import Budget, planned_steps

    budget = Budget(epochs=5, steps=800, seconds=120.0, gflop=1000.0, min_steps=200)
    assert planned_steps(budget, per_epoch=23, step_gflop=0.13) == 115  # digits: its 5 epochs
    assert planned_steps(budget, per_epoch=1000, step_gflop=0.13) == 800  # the step budget
    assert planned_steps(budget, per_epoch=1000, step_gflop=2.5) == 400  # 1000 GFLOP / 2.5 a step
    assert planned_steps(budget, per_epoch=391, step_gflop=28.0) == 200  # ResNet-18 at batch 128: the floor
    assert planned_steps(budget, per_epoch=30, step_gflop=28.0) == 150  # ... but never past 5 epochs
    assert planned_steps(budget, per_epoch=None, step_gflop=None) == 800  # no length, no count: the steps
    unlimited = Budget(5, 800, 120.0)
    assert planned_steps(unlimited, per_epoch=1000, step_gflop=1e6) == 800


def test_the_step_cost_is_counted_not_timed(make_project, monkeypatch):
    from dldoctor.probes.training import short as short_training

    ctx = context(make_project(SPEC))
    counted = short_training.step_gflop(ctx)
    # Linear 8->32 and 32->2 on 32 samples: 2 FLOPs a multiply-add forward, 4 backward
    # (the first layer's input gradient is not needed), within the 6 x params x samples floor.
    forward = 2 * 32 * (8 * 32 + 32 * 2)
    params = 8 * 32 + 32 + 32 * 2 + 2
    assert counted == pytest.approx(max(3 * forward, 6 * params * 32) / 1e9, rel=0.2)
    jump(monkeypatch, short_training)
    again = context(make_project(SPEC, name="again.py"))
    assert short_training.step_gflop(again) == counted


def test_a_convolutions_cost_is_counted_above_the_parameter_floor(make_project):
    from dldoctor.probes.training import short as short_training

    conv = SPEC.replace("X = torch.randn(384, 8, generator=g)", "X = torch.randn(384, 1, 16, 16, generator=g)") \
        .replace("(X[:, 0] + 0.5 * X[:, 1] > 0)", "(X.mean((1, 2, 3)) > 0)") \
        .replace("nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))",
                 "nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 256, 2))")
    ctx = context(make_project(conv))
    # A 3x3 convolution reuses its 80 parameters at 256 positions: forward 2 x 32 x 8 x 9 x 256,
    # its weight gradient as much again; the linear layer 2 x 32 x 2048 x 2, its backward twice that.
    conv_flops = 2 * 32 * 8 * 9 * 256
    linear_flops = 2 * 32 * 2048 * 2
    params = 8 * 9 + 8 + 2048 * 2 + 2
    assert 2 * conv_flops + 3 * linear_flops > 6 * params * 32
    assert short_training.step_gflop(ctx) == pytest.approx((2 * conv_flops + 3 * linear_flops) / 1e9, rel=0.05)


# -- the short training run ------------------------------------------------------------
def test_the_short_run_trains_the_same_steps_whatever_the_clock_says(make_project, monkeypatch):
    from dldoctor.probes.training import runs as training_run
    from dldoctor.probes.training import short as short_training

    path = make_project(SPEC)
    calm = training_run.main_run(context(path))
    assert calm.stopped_by == "epochs" and calm.last.steps == 5 * 12
    clock = jump(monkeypatch, short_training)
    slowed = training_run.main_run(context(path, training__max_seconds=GENEROUS))
    assert clock.calls > 100  # the run did read the (jumping) clock, for its step timings
    assert signature(slowed) == signature(calm)


def test_an_expensive_model_trains_fewer_steps_fixed_by_its_cost(make_project, monkeypatch):
    from dldoctor.probes.training import runs as training_run
    from dldoctor.probes.training import short as short_training

    path = make_project(SPEC)
    cost = short_training.step_gflop(context(path))
    # A budget that pays for 37 of this model's steps: 37 steps, on any machine.
    cut = training_run.main_run(context(path, training__max_gflop=37.5 * cost, training__min_steps=10))
    assert cut.budget.steps == 37 and cut.last.steps == 37 and cut.stopped_by == "steps"
    assert [e.steps for e in cut.epochs] == [12, 24, 36, 37]
    # The floor: never fewer than min_steps, however expensive the model.
    floor = training_run.main_run(context(path, training__max_gflop=1e-12, training__min_steps=20))
    assert floor.last.steps == 20
    jump(monkeypatch, short_training)
    again = training_run.main_run(context(path, training__max_gflop=37.5 * cost, training__min_steps=10,
                                          training__max_seconds=GENEROUS))
    assert signature(again) == signature(cut)


def test_the_findings_are_the_same_whatever_the_clock_says(monkeypatch):
    from dldoctor.probes.training import short as short_training

    calm = diagnose_file(UNDERFIT, select=RUN_READERS)
    assert "underfitting" in ids(calm)
    jump(monkeypatch, short_training)
    # Limits the jumping clock cannot reach (the run keeps a reserve of two of its
    # slowest steps before the check's deadline: 2 x 100 s here).
    slowed = diagnose_file(UNDERFIT, select=RUN_READERS, overrides=(("training.max_seconds", GENEROUS),
                                                                    ("run.check_timeout_s", 604800.0)))
    assert ids(slowed) == ids(calm)
    assert [f.title for f in slowed.diagnoses] == [f.title for f in calm.diagnoses]


def test_a_run_at_its_safety_limit_is_incomplete_for_every_reader(monkeypatch):
    from dldoctor.probes.training import runs as training_run
    from dldoctor.probes.training import short as short_training

    runs = []
    real = training_run.short_training
    monkeypatch.setattr(training_run, "short_training", lambda *a, **k: runs.append(1) or real(*a, **k))
    jump(monkeypatch, short_training)  # the first step "takes" 200 s: past the 120 s limit
    diagnosis = diagnose_file(UNDERFIT, select=RUN_READERS, overrides=())  # the default limits
    assert diagnosis.status == "incomplete"
    assert set(ids(diagnosis)) == {"check-incomplete"}  # no underfitting, no worse-than-baseline
    checks = {name for f in diagnosis.diagnoses for name in f.check.split(", ")}
    assert {"baselines", "bias-variance"} <= checks
    for f in diagnosis.diagnoses:
        assert re.search(r"the short training run stopped at its safety limit of 120 s after \d+ of 315 steps "
                         r"\(training\.max_seconds\)", f.title), f.title
    assert len(runs) == 1  # memoised: the second reader was told at once, without training again


def test_the_checks_deadline_is_a_safety_limit_too(make_project):
    from dldoctor.probes.training import runs as training_run

    ctx = context(make_project(SPEC))
    ctx.deadline = time.monotonic() + 1.0  # less than the run's reserve: it must not start cutting steps
    with pytest.raises(CheckIncomplete, match=r"run\.check_timeout_s = 120 s\) after 0 of 60 steps") as first:
        training_run.main_run(ctx)
    ctx.deadline = None
    with pytest.raises(CheckIncomplete) as second:  # memoised, even once the deadline is gone
        training_run.main_run(ctx)
    assert second.value is first.value


# -- the overfit stage ------------------------------------------------------------------
def test_the_overfit_curve_is_the_same_whatever_the_clock_says(make_project, monkeypatch):
    from dldoctor.probes.overfit import experiments
    from dldoctor.probes.overfit import one_batch as overfit

    path = make_project(SPEC)
    calm = experiments.baseline(context(path))
    jump(monkeypatch, overfit)
    slowed = experiments.baseline(context(path))
    assert slowed.losses == calm.losses and slowed.stopped_early == calm.stopped_early


def test_an_overfit_run_at_the_checks_deadline_is_incomplete_not_a_short_curve(make_project):
    from dldoctor.probes.overfit import experiments

    ctx = context(make_project(SPEC), overfit__converged_rel=1e-9, overfit__converged_abs=0.0)
    ctx.deadline = time.monotonic() + 0.5
    with pytest.raises(CheckIncomplete, match=r"overfit run .* after 1 of 200 steps"):
        experiments.baseline(ctx)


def test_the_overfit_check_reports_incomplete_instead_of_a_slow_curve(monkeypatch):
    from dldoctor.core import context as context_module
    from dldoctor.core import pipeline

    case = REPO / "examples" / "bugs" / "fit_lr_low_mlp_sgd.py"  # a curve that is slow by nature
    clock = JumpingClock(step=30.0)  # every check's deadline is 4 readings away
    monkeypatch.setattr(context_module, "time", clock)
    monkeypatch.setattr(pipeline, "time", clock)
    diagnosis = diagnose_file(case, select=("overfit-batch",), overrides=())  # the default limits
    assert diagnosis.status == "incomplete"
    assert "lr-too-low" not in ids(diagnosis) and "check-incomplete" in ids(diagnosis)


# -- the other fixed-budget measurements ---------------------------------------------------
def test_timed_steps_are_a_fixed_count(make_project, monkeypatch):
    from dldoctor.probes.resources import throughput as resource_throughput
    from dldoctor.probes.resources.throughput import batch_scaling, preloaded_step

    ctx = context(make_project(SPEC))
    jump(monkeypatch, resource_throughput)  # each step "takes" 100 s: the old 2 s budget kept 1
    assert preloaded_step(ctx, ctx.batches("train"), steps=10).steps == 10
    assert [t.steps for t in batch_scaling(ctx, ctx.first_batch("train"), steps=5)] == [5, 5, 5]
    ctx.deadline = time.monotonic() - 1.0
    with pytest.raises(CheckIncomplete, match="preloaded batches"):
        preloaded_step(ctx, ctx.batches("train"), steps=10)


def test_items_cut_by_the_safety_limit_make_the_pipeline_check_incomplete(make_project, monkeypatch):
    from dldoctor.checks.resources.input_pipeline import _time_items
    from dldoctor.probes.resources import loader as resource_loader

    ctx = context(make_project(SPEC))
    loader = ctx.loader("train")
    cfg = dict(ctx.config.section("input_pipeline"))
    assert _time_items(ctx, loader, cfg, 32).items == 32  # the fixed count
    jump(monkeypatch, resource_loader)  # each item "takes" 200 s: past the 20 s limit after 2
    with pytest.raises(CheckIncomplete, match=r"after 2 of 32 items \(input_pipeline\.item_budget_s\)"):
        _time_items(ctx, loader, cfg, 32)


def test_the_users_model_trains_fixed_steps_per_fold(make_project, monkeypatch):
    import numpy as np

    from dldoctor.probes.data import measurements as m
    from dldoctor.probes.data import user_model as data_user_model
    from dldoctor.probes.data.noise import noise_rows
    from dldoctor.probes.data.user_model import fold_steps, user_model_oof

    assert fold_steps(800, 64, 5, 5, math.inf, 0.01) == 5 * 13
    assert fold_steps(800, 64, 5, 5, 1.0, 0.01) == 20  # 1 GFLOP over 5 folds at 0.01 a step
    assert fold_steps(800, 64, 5, 5, 1e-9, 0.01) == 1
    ctx = context(make_project(SPEC), profile="thorough")
    train = m.train(ctx)
    rows = noise_rows(train, 1000, 0)
    calm = user_model_oof(ctx, train, rows, 2, 3, epochs=3, max_seconds=300.0, max_gflop=1000.0)
    jump(monkeypatch, data_user_model)
    slowed = user_model_oof(ctx, train, rows, 2, 3, epochs=3, max_seconds=GENEROUS, max_gflop=1000.0)
    assert np.array_equal(slowed, calm)
    with pytest.raises(CheckIncomplete, match=r"label_noise\.user_model_max_seconds"):
        user_model_oof(ctx, train, rows, 2, 3, epochs=3, max_seconds=300.0, max_gflop=1000.0)


def test_the_range_test_has_fixed_steps(make_project, monkeypatch):
    from dldoctor.probes import lr_sweep as sweep_module
    from dldoctor.probes.lr_sweep import lr_sweep

    path = make_project(SPEC)
    calm = lr_sweep(context(path), 1e-5, 0.1, 40, 1e9, 0.9, margin=2.0)
    jump(monkeypatch, sweep_module)
    slowed = lr_sweep(context(path), 1e-5, 0.1, 40, 1e9, 0.9, margin=2.0)
    assert len(slowed.losses) == 40 and slowed.losses == calm.losses
    ctx = context(path)
    ctx.deadline = time.monotonic() + 1.0
    with pytest.raises(CheckIncomplete, match=r"range test .* after 1 of 40 steps"):
        lr_sweep(ctx, 1e-5, 0.1, 40, 1e9, 0.9, margin=2.0)


def test_a_tuning_trial_is_scored_on_fixed_steps_or_not_at_all(make_project, monkeypatch):
    from dldoctor.probes.training import short as short_training
    from dldoctor.tuning.trial import TrialBudget, score

    path = make_project(SPEC)
    cfg = dict(context(path).config.section("tune"))
    calm = score(context(path), TrialBudget.from_config(cfg))
    jump(monkeypatch, short_training)
    slowed = score(context(path), TrialBudget.from_config({**cfg, "max_seconds": GENEROUS}))
    assert (slowed.error, slowed.curve, slowed.stopped_by) == (calm.error, calm.curve, calm.stopped_by)
    with pytest.raises(CheckIncomplete, match=r"\(trial\) stopped at its safety limit .*tune\.max_seconds"):
        score(context(path), TrialBudget.from_config(cfg))


def test_the_real_memory_probe_stops_at_a_safety_limit_not_a_smaller_answer():
    from torch import nn

    from dldoctor.core.context import default_forward
    from dldoctor.probes.resources.memory_model import find_max_batch

    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    batch = (torch.randn(16, 8), torch.randint(0, 2, (16,)))
    with pytest.raises(CheckIncomplete, match=r"after 0 of at most 8 batch sizes"):
        find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch, default_forward,
                       nn.CrossEntropyLoss(), start=64, time_left=lambda: 0.0)
