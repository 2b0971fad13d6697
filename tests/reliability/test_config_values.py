"""Strict config values and strict bias-variance inputs.

Every config key has a range in ``core/config_schema.py``; a value outside it, from
any layer (``--config``, pyproject, a profile, a command-line option), is a
ConfigError (exit 2) naming where, the key, the value and the range. The
bias-variance command decides one scale (fractions or percentages) for its whole
input and refuses mixed scales and values outside [0, 100].
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dldoctor.core.config import PROFILES, default_config, load_config, option_overrides
from dldoctor.core.config_schema import SCHEMA
from dldoctor.core.errors import ConfigError, UsageError
from dldoctor.core.runner import RunOptions, resolve_config
from dldoctor.loading.metrics_log import Reading, decide_scale, parse_metrics
from tests.conftest import HEALTHY_BODY, run_cli


def leaf_keys(values: dict, prefix: str = "") -> dict[str, object]:
    """Dotted leaf key -> default value, profiles left out."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if key == "profiles" and not prefix:
            continue
        if isinstance(value, dict):
            out.update(leaf_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


DEFAULTS = leaf_keys(default_config())
KEYS = sorted(DEFAULTS)


def nested(dotted: str, value: object) -> dict:
    *parents, leaf = dotted.split(".")
    out: dict = {leaf: value}
    for part in reversed(parents):
        out = {part: out}
    return out


def write_config(folder: Path, dotted: str, value: object) -> Path:
    path = folder / "bad.yaml"
    path.write_text(yaml.safe_dump(nested(dotted, value)))
    return path


# --- the schema itself ---------------------------------------------------------------


def test_every_default_key_has_a_range_and_every_default_is_inside_it():
    missing = sorted(set(DEFAULTS) - set(SCHEMA))
    assert not missing, f"config keys without a range in core/config_schema.py: {missing}"
    stale = sorted(set(SCHEMA) - set(DEFAULTS))
    assert not stale, f"ranges of keys that no longer exist: {stale}"
    outside = {k: v for k, v in DEFAULTS.items() if not SCHEMA[k].allows(v)}
    assert not outside, f"defaults outside their own range: {outside}"


def test_every_profile_sets_known_keys_inside_their_ranges():
    for tier, body in default_config()["profiles"].items():
        for key, value in leaf_keys(body).items():
            assert key in SCHEMA, f"profiles.{tier}.{key} has no range"
            assert SCHEMA[key].allows(value), f"profiles.{tier}.{key} = {value!r}: {SCHEMA[key].describe()}"
        load_config(profile=tier)  # and each applies cleanly


# --- invalid values, each layer ------------------------------------------------------


@pytest.mark.parametrize("dotted,value,shown,rule", [
    ("run.check_timeout_s", -5, "-5", "(0, 604800]"),
    ("run.check_timeout_s", 0, "0", "(0, 604800]"),
    ("overfit.steps", 0, "0", ">= 1"),
    ("training.epochs", -3, "-3", ">= 1"),
    ("run.seed", -1, "-1", "[0, 4294967295]"),
    ("label_noise.noise_warn", 1.5, "1.5", "[0, 1]"),
    ("tune.pruner", "fastest", "'fastest'", "median, halving, none"),
    ("data.max_read_seconds", float("nan"), "nan", "> 0"),
    ("training.max_seconds", float("inf"), "inf", "> 0"),
    ("memory_model.budget", "lots", "'lots'", "8GiB"),
    ("memory_model.safety_margin", 1.0, "1.0", "[0, 1)"),
])
def test_a_config_file_value_outside_its_range_names_where_key_value_and_range(tmp_path, dotted, value, shown, rule):
    path = write_config(tmp_path, dotted, value)
    with pytest.raises(ConfigError) as err:
        load_config(None, path)
    message = err.value.message
    assert message.startswith(f"--config {path}: {dotted} = {shown} ")
    assert rule in message


def test_values_on_the_boundary_that_mean_something_are_accepted(tmp_path):
    # 0 = the spec's learning rate, the loader's batch, no re-training, never suggest cross-validation.
    for dotted in ("overfit.lr", "overfit.batch_size", "tune.confirm_seeds", "too_little_data.cross_validation_below"):
        assert load_config(None, write_config(tmp_path, dotted, 0)).get(dotted) == 0
    assert load_config(None, write_config(tmp_path, "run.seed", 2**32 - 1)).get("run.seed") == 2**32 - 1
    assert load_config(None, write_config(tmp_path, "memory_model.budget", "8GiB")).get("memory_model.budget") == "8GiB"
    assert load_config(None, write_config(tmp_path, "tune.pruner", "none")).get("tune.pruner") == "none"


def test_pyproject_values_are_held_to_the_same_ranges(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.dldoctor.overfit]\nsteps = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "[tool.dldoctor]: overfit.steps = 0 is out of range: must be >= 1" in err.value.message


def test_a_profile_override_is_checked_even_when_another_profile_runs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("profiles:\n  thorough:\n    training:\n      epochs: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(None, path, profile="quick")
    assert "(profiles.thorough): training.epochs = 0 is out of range" in err.value.message
    path.write_text("profiles:\n  quick: 3\n")
    with pytest.raises(ConfigError, match=r"profiles.quick must be a table"):
        load_config(None, path)


def test_seed_from_the_command_line_goes_through_the_schema():
    with pytest.raises(ConfigError) as err:
        resolve_config(RunOptions(target=None, overrides=(("run.seed", -1),)))
    assert "command-line options: run.seed = -1 is out of range: must be in [0, 4294967295]" in err.value.message
    with pytest.raises(ConfigError, match=r"run.seed = 4294967296"):
        resolve_config(RunOptions(target=None, overrides=(("run.seed", 2**32),)))
    assert resolve_config(RunOptions(target=None, overrides=(("run.seed", 7),))).get("run.seed") == 7


def test_command_options_are_checked_with_the_option_named():
    with pytest.raises(ConfigError, match=r"^--steps: overfit.steps = 0 is out of range: must be >= 1"):
        option_overrides(("--steps", "overfit.steps", 0))
    with pytest.raises(ConfigError, match=r"--trials: tune.trials = -2"):
        option_overrides(("--trials", "tune.trials", -2))
    with pytest.raises(ConfigError, match=r"--lr: overfit.lr = -0.1"):
        option_overrides(("--lr", "overfit.lr", -0.1))
    with pytest.raises(ConfigError, match=r"--max-samples: data.max_samples = 5"):
        option_overrides(("--max-samples", "data.max_samples", 5))
    assert option_overrides(("--steps", "overfit.steps", 50), ("--lr", "overfit.lr", None)) == (("overfit.steps", 50),)


@pytest.mark.parametrize("budget,needle", [
    ("-3ep", "--budget '-3ep': training.epochs = -3 is out of range: must be >= 1"),
    ("0ep", "training.epochs = 0 is out of range"),
    ("0steps", "training.max_steps = 0 is out of range"),
    ("5ep,0s", "--budget '0s': training.max_seconds = 0.0 is out of range: must be > 0 (seconds)"),
    ("-2s", "training.max_seconds = -2.0"),
    ("1.5ep", "must be a whole number of epochs"),
    ("5ep,3ep", "epochs given twice"),
    ("..ep", "cannot read '..ep'"),
])
def test_evaluate_budget_rejects_zero_negative_and_unreadable_parts(budget, needle):
    from dldoctor.cli.evaluate import budget_overrides
    from dldoctor.core.errors import DldoctorError

    with pytest.raises(DldoctorError) as err:
        budget_overrides(budget)
    assert needle in err.value.message


def test_evaluate_budget_reads_valid_parts():
    from dldoctor.cli.evaluate import budget_overrides

    assert budget_overrides("5ep, 30s") == (("training.epochs", 5), ("training.max_seconds", 30.0))
    assert budget_overrides("400steps") == (("training.max_steps", 400),)


def test_the_real_cli_exits_two_on_bad_config_values(make_project, tmp_path):
    target = make_project(HEALTHY_BODY)
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  check_timeout_s: -5\n")
    proc = run_cli("run", target, "--config", bad)
    assert proc.returncode == 2, proc.stderr
    assert f"--config {bad}: run.check_timeout_s = -5 is out of range: must be in (0, 604800]" in proc.stderr
    proc = run_cli("overfit-batch", target, "--steps", "0")
    assert proc.returncode == 2 and "--steps: overfit.steps = 0 is out of range: must be >= 1" in proc.stderr
    proc = run_cli("evaluate", target, "--budget", "-3ep")
    assert proc.returncode == 2 and "training.epochs = -3 is out of range" in proc.stderr


# --- fuzz: any value for any key -----------------------------------------------------

VALUES = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([0, -1, 1, 0.5, 1.5, -0.0, 2**32, 2**32 - 1, 1e308, "median", "halving", "none", "",
                     "8GiB", "0", "-1GB", "9" * 400 + "GB"]),
)

#: A key of the defaults, or the same key inside a profile (``profiles.<tier>.<key>``).
FUZZ_KEYS = st.one_of(
    st.sampled_from(KEYS),
    st.tuples(st.sampled_from(PROFILES), st.sampled_from(KEYS)).map(lambda t: f"profiles.{t[0]}.{t[1]}"),
)


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory) -> Path:
    """One folder for every example (a function-scoped tmp_path is not reset between them)."""
    return tmp_path_factory.mktemp("config-fuzz")


def _stored(values, dotted: str):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def _check_outcome(dotted: str, value_of) -> None:
    """Either the value is stored, of the default's type and inside the key's range, or a
    ConfigError names the key; any other exception fails the test."""
    key = dotted.split(".", 2)[2] if dotted.startswith("profiles.") else dotted
    try:
        config = value_of()
    except ConfigError as exc:
        assert key in exc.message, exc.message  # noqa: PT017 - either outcome is right; pytest.raises would demand one
        return
    stored = _stored(config.values, dotted)
    default = DEFAULTS[key]
    assert type(stored) is type(default), (dotted, stored)
    assert SCHEMA[key].allows(stored), (dotted, stored, SCHEMA[key].describe())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dotted=FUZZ_KEYS, value=VALUES)
def test_fuzz_any_value_for_any_key_is_stored_in_range_or_refused_naming_the_key(fuzz_folder, dotted, value):
    path = fuzz_folder / "fuzz.yaml"
    path.write_text(yaml.safe_dump(nested(dotted, value), allow_unicode=True))
    _check_outcome(dotted, lambda: resolve_config(RunOptions(target=None, config_file=path)))
    if not dotted.startswith("profiles."):
        # The command-line layer gets Python objects straight from the options.
        _check_outcome(dotted, lambda: resolve_config(RunOptions(target=None, overrides=((dotted, value),))))


# --- bias-variance: one scale for the whole input ----------------------------------


def _errors(percent=False, **values):
    from dldoctor.cli.bias_variance import command_line_errors

    return command_line_errors([(k.replace("_", "-"), v) for k, v in values.items()], percent)


def test_command_line_scale_is_one_decision():
    assert _errors(train=0.08, val=0.15, irreducible=0.0) == pytest.approx({"train": 0.08, "val": 0.15,
                                                                            "irreducible": 0.0})
    assert _errors(train=8, val=15, test=21, irreducible=2) == pytest.approx(
        {"train": 0.08, "val": 0.15, "test": 0.21, "irreducible": 0.02})
    # Stated once: with --percent, 0.5 is half a percent.
    assert _errors(percent=True, train=2, val=0.5) == pytest.approx({"train": 0.02, "val": 0.005})
    # 1.0 is a fraction (all within [0, 1]); 0 reads the same on both scales.
    assert _errors(train=0.2, val=1.0) == pytest.approx({"train": 0.2, "val": 1.0})
    assert _errors(train=0, val=40) == pytest.approx({"train": 0.0, "val": 0.4})


@pytest.mark.parametrize("values,needle", [
    ({"train": 2.0, "val": 0.1}, "mixed scales: --val = 0.1 reads as a fraction but --train = 2 as a percentage"),
    ({"train": 1.0, "val": 15}, "mixed scales"),
    ({"train": 8, "val": 15, "irreducible": 0.5}, "--irreducible = 0.5 reads as a fraction"),
    ({"train": 150, "val": 3}, "--train = 150 is out of range"),
    ({"train": 0.1, "val": -3}, "--val = -3 is out of range"),
    ({"train": math.nan, "val": 0.1}, "--train = nan is out of range"),
    ({"train": 0.1, "val": math.inf}, "--val = inf is out of range"),
])
def test_command_line_mixed_scales_and_out_of_range_values_are_refused(values, needle):
    with pytest.raises(UsageError) as err:
        _errors(**values)
    assert needle in err.value.message
    if "mixed" in needle:
        assert "--percent" in err.value.hint and "State the scale once" in err.value.hint


def test_bias_variance_cli_mixed_scales_exit_two_and_percentages_read_as_fractions():
    proc = run_cli("bias-variance", "--train", "2.0", "--val", "0.1")
    assert proc.returncode == 2
    assert "mixed scales" in proc.stderr and "--train 0.02 --val 0.1" in proc.stderr
    proc = run_cli("bias-variance", "--train", "8", "--val", "15", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["reports"]["bias_variance"]
    assert report["train"] == pytest.approx(0.08) and report["val"] == pytest.approx(0.15)


def _log(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("bad", ["150", "-3"])
def test_a_log_accuracy_outside_0_100_names_its_line_and_column(tmp_path, bad):
    path = _log(tmp_path, f"epoch,train_acc,val_acc\n1,0.5,0.4\n2,0.6,{bad}\n3,0.7,0.6\n")
    with pytest.raises(UsageError) as err:
        parse_metrics(path)
    assert f"{path}: line 3, column 'val_acc' = {bad} is out of range" in err.value.message


def test_a_log_accuracy_outside_0_100_exits_two_from_the_cli(tmp_path):
    path = _log(tmp_path, "epoch,train_acc,val_acc\n1,0.5,0.4\n2,0.6,150\n")
    proc = run_cli("bias-variance", "--metrics", path)
    assert proc.returncode == 2 and "line 3, column 'val_acc' = 150" in proc.stderr


def test_json_lines_errors_name_the_line(tmp_path):
    path = _log(tmp_path, '{"train_error": 0.2, "val_error": 0.3}\n{"train_error": 0.1, "val_error": 101}\n',
                name="log.jsonl")
    with pytest.raises(UsageError, match="line 2, column 'val_error' = 101 is out of range"):
        parse_metrics(path)


def test_a_log_scale_is_one_decision_for_every_accuracy_and_error_column(tmp_path):
    mixed = _log(tmp_path, "epoch,train_acc,val_acc\n1,50,0.4\n2,60,0.5\n")
    with pytest.raises(UsageError) as err:
        parse_metrics(mixed)
    assert "mixed scales: line 2, column 'val_acc' = 0.4 reads as a fraction" in err.value.message
    assert "line 2, column 'train_acc' = 50 as a percentage" in err.value.message
    # Stated once, the same numbers read as percentages.
    assert parse_metrics(mixed, percent=True).errors("val") == pytest.approx((0.996, 0.995))
    percent = _log(tmp_path, "epoch,train_acc,val_acc\n1,80,70\n2,90,75\n")
    assert parse_metrics(percent).errors("train") == pytest.approx((0.2, 0.1))
    # Error columns share the decision (before, a percentage error column was taken as it was).
    errors = _log(tmp_path, "epoch,train_error,val_error\n1,20,30\n2,10,25\n")
    assert parse_metrics(errors).errors("val") == pytest.approx((0.3, 0.25))


def test_columns_named_as_percentages_state_the_scale(tmp_path):
    named = _log(tmp_path, "epoch,train_acc_pct,val accuracy (%)\n1,99.5,0.5\n2,99.8,0.9\n")
    log = parse_metrics(named)
    assert log.scale == 100 and log.errors("val") == pytest.approx((0.995, 0.991))
    half = _log(tmp_path, "epoch,train_acc,val_acc_pct\n1,0.5,40\n2,0.6,50\n")
    with pytest.raises(UsageError, match=r"'train_acc' = 0.5 reads as a fraction, but .*'val_acc_pct' = 40 is in a "
                                         "column named as percentages"):
        parse_metrics(half)


def test_losses_are_not_bounded_and_missing_cells_are_not_judged(tmp_path):
    path = _log(tmp_path, "epoch,train_loss,val_loss,train_acc,val_acc\n1,3.2,3.5,0.1,0.1\n2,250,-0.5,,\n")
    log = parse_metrics(path)
    assert log.losses("train") == (3.2, 250.0) and log.losses("val") == (3.5, -0.5)
    assert log.scale == 1 and math.isnan(log.errors("val")[1])


def test_irreducible_joins_the_log_scale(tmp_path):
    path = _log(tmp_path, "epoch,train_acc,val_acc\n1,0.8,0.7\n2,0.9,0.75\n")
    with pytest.raises(UsageError, match="--irreducible = 2 as a percentage"):
        parse_metrics(path, extra=(Reading(2.0, "--irreducible"),))
    assert parse_metrics(path, extra=(Reading(0.02, "--irreducible"),)).scale == 1


def test_decide_scale_rule():
    r = lambda *vs: [Reading(v, f"v{i}") for i, v in enumerate(vs)]  # noqa: E731
    assert decide_scale(r(0.0, 0.5, 1.0)) == 1
    assert decide_scale(r(0.0, 2.0, 100.0)) == 100
    assert decide_scale(r(0.0, 0.0)) == 1
    assert decide_scale(r(0.5), percent=True) == 100
    assert decide_scale([Reading(0.5, "a", declared_percent=True), Reading(40, "b")]) == 100
    with pytest.raises(UsageError):
        decide_scale(r(0.5, 2.0))


def test_a_size_too_large_for_a_float_is_refused_not_a_crash(tmp_path):
    with pytest.raises(ConfigError, match=r"memory_model.budget = '9+GB' is not a size"):
        load_config(None, write_config(tmp_path, "memory_model.budget", "9" * 400 + "GB"))
