"""The search end to end, in-process, on a tiny project (seconds)."""

import sys

import pytest
import torch

# Each test trains a study's trials.
pytestmark = pytest.mark.slow

pytest.importorskip("optuna")

from dldoctor.core.errors import DldoctorError, EntrypointError  # noqa: E402
from tests.tuning.helpers import DATA, FAST, tiny_spec, tune_file  # noqa: E402


def trials_of(diagnosis):
    return [(t["number"], t["state"], t["params"], t["error"]) for t in diagnosis.reports["tuning"]["trials"]]


def test_bad_defaults_are_beaten_significantly_and_the_same_seed_repeats(make_project):
    path = make_project(tiny_spec(lr=1e-5))
    first = tune_file(path)
    report = first.reports["tuning"]
    trials = report["trials"]
    assert len(trials) == 8
    assert trials[0]["params"] == {"lr": 1e-5, "width": 4}  # the defaults open the search
    suggestion = first.reports["lr_range"]["reading"]["suggestion"]
    assert trials[1]["params"] == {"lr": pytest.approx(min(suggestion, 0.1)), "width": 4}  # the range test's rate
    assert report["best"]["error"] < report["baseline"]["error"] - 0.2
    assert report["gain"]["significant"] and report["gain"]["gain"] > 2 * report["gain"]["se"]
    assert len(report["gain"]["best_errors"]) == 2  # re-trained on fresh seeds
    assert [d.id for d in first.diagnoses] == ["lr-too-low"]
    assert trials_of(tune_file(path)) == trials_of(first)
    assert trials_of(tune_file(path, seed=1)) != trials_of(first)


@pytest.mark.parametrize("method", ["random", "grid", "bayes"])
def test_every_method_runs_through_the_same_study_loop(make_project, method):
    report = tune_file(make_project(tiny_spec(lr=1e-3)), method=method,
                       overrides=(("tune.trials", 5), ("tune.epochs", 2), ("tune.confirm_seeds", 0))).reports["tuning"]
    assert report["method"] == method and len(report["trials"]) == 5
    assert report["best"] is not None
    if method == "grid":
        values = {t["params"]["width"] for t in report["trials"][1:]}
        assert values <= {4, 16, 64}


def test_without_a_search_space_the_optimizer_learning_rate_is_searched(make_project):
    body = DATA + """

def dldoctor_spec(batch_size=32):
    train, val = loaders(batch_size)
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)),
        "train_loader": train, "val_loader": val, "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.SGD(p, lr=1e-4, momentum=0.9, weight_decay=1e-3),
    }
"""
    report = tune_file(make_project(body)).reports["tuning"]
    names = [p["name"] for p in report["params"]]
    assert names == ["optimizer.lr", "optimizer.weight_decay"]
    assert report["params"][0]["target"] == "optimizer"
    assert report["baseline"]["params"] == {"optimizer.lr": 1e-4, "optimizer.weight_decay": 1e-3}
    lrs = [t["params"]["optimizer.lr"] for t in report["trials"]]
    assert min(lrs) >= 1e-6 - 1e-12 and max(lrs) > 1e-3  # 100x either side, and up to the range test's rate


def test_a_spec_argument_that_drives_the_learning_rate_is_found_by_measurement(make_project):
    body = DATA + """

def dldoctor_spec(step_size=1e-4, batch_size=32):
    train, val = loaders(batch_size)
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)),
        "train_loader": train, "val_loader": val, "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=step_size),
    }
"""
    report = tune_file(make_project(body), overrides=FAST[:3] + (("tune.confirm_seeds", 0),)).reports["tuning"]
    assert [(p["name"], p["target"]) for p in report["params"]] == [("step_size", "spec")]


@pytest.mark.parametrize("where", ["spec", "model"])
def test_a_configuration_the_spec_or_model_rejects_fails_alone(make_project, where):
    if where == "spec":
        body = tiny_spec(lr=1e-3).replace("    train, val = loaders()",
                                          "    if width == 16:\n        raise ValueError('width 16 is not supported')\n"
                                          "    train, val = loaders()")
    else:  # the model is built, then crashes in its first forward pass
        body = tiny_spec(lr=1e-3).replace("nn.Linear(width, 2))", "nn.Linear(4 if width == 16 else width, 2))")
        body = body.replace("width 16 is not supported", "")
    report = tune_file(make_project(body), overrides=FAST[:3] + (("tune.confirm_seeds", 0),)).reports["tuning"]
    failed = [t for t in report["trials"] if t["state"] == "fail"]
    assert failed and all(t["params"]["width"] == 16 for t in failed)
    assert ("width 16 is not supported" if where == "spec" else "RuntimeError") in failed[0]["note"]
    assert report["best"]["params"]["width"] != 16


def test_the_users_objects_and_random_streams_are_left_alone(make_project):
    body = tiny_spec(lr=1e-3).replace('"model": lambda: nn.Sequential(nn.Linear(8, width), nn.ReLU(), '
                                      'nn.Linear(width, 2)),', '"model": MODEL,')
    body = body.replace("def dldoctor_spec", "MODEL = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))\n"
                                             "INITIAL = {k: v.clone() for k, v in MODEL.state_dict().items()}\n\n"
                                             "def dldoctor_spec")
    path = make_project(body.replace(', "width": [4, 16, 64]', ""))
    torch.manual_seed(123)
    before_rng = torch.random.get_rng_state()
    report = tune_file(path, overrides=FAST[:3] + (("tune.confirm_seeds", 0),)).reports["tuning"]
    assert torch.equal(torch.random.get_rng_state(), before_rng)
    assert report["best"] is not None
    # the spec handed over a model instance: every trial trained copies of it
    module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(path.resolve()))
    for key, value in module.MODEL.state_dict().items():
        assert torch.equal(value, module.INITIAL[key])


def test_a_spec_without_validation_data_cannot_be_tuned(make_project):
    path = make_project(tiny_spec().replace('"val_loader": val,', ""))
    with pytest.raises(DldoctorError, match="no val_loader"):
        tune_file(path)
    assert tune_file(path, lr_only=True).reports["lr_range"]["reading"]["status"] in ("clear", "weak", "none")


def test_a_bad_search_space_fails_before_anything_trains(make_project):
    path = make_project(tiny_spec(space='{"depth": [1, 2]}'))
    with pytest.raises(EntrypointError, match=r"'depth'.* is not a keyword argument"):
        tune_file(path)


def test_a_study_is_for_one_space(make_project, tmp_path):
    url = f"sqlite:///{tmp_path / 'trials.db'}"
    quick = (("tune.trials", 2), ("tune.epochs", 1), ("tune.confirm_seeds", 0))
    tune_file(make_project(tiny_spec(lr=1e-3)), storage=url, study="s", overrides=quick)
    other = make_project(tiny_spec(lr=1e-3, space='{"width": [4, 8]}'), name="other.py")
    with pytest.raises(DldoctorError, match="made for another search space"):
        tune_file(other, storage=url, study="s", overrides=quick)
