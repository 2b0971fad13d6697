"""Plugins are first-class: a typed API, their own diagnosis IDs and config keys, honest failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from dldoctor.api import Check, CheckContext, DiagnosisInfo, Finding, Severity
from dldoctor.core import catalogue
from dldoctor.core.config import load_config
from dldoctor.core.errors import ConfigError
from dldoctor.core.ranking import rank
from dldoctor.core.registry import discover, load_plugins

INFO = DiagnosisInfo(
    title="Something the plugin measures",
    explanation="What it means and why it matters.",
    evidence=("the number it reads", "the threshold"),
    fixes=("Do this first.", "Then this."),
)

# A plugin module: one check with its own ID (explaining a built-in symptom) and its own config section.
GOOD = '''
from dldoctor.api import Check, DiagnosisInfo, Range, Severity, Stage

INFO = DiagnosisInfo(title="Plugin root cause", explanation="It explains exploding gradients.",
                     evidence=("a measurement",), fixes=("Fix the root.", "Then check again."),
                     explains=("exploding-gradients",))


class Good(Check):
    """Reports its own ID."""

    name = "plugin-good"
    stage = Stage.RUN
    catalogue = {"plugin-root-cause": INFO}
    config = {"plugin_good": {"threshold": (0.5, Range(0, 1, note="a fraction")), "mode": "fast"}}

    def run(self, ctx):
        t = ctx.config.get("plugin_good.threshold")
        return [self.finding("plugin-root-cause", Severity.WARNING, 0.9, metrics={"threshold": t})]
'''


def source(name: str, body: str) -> str:
    """A module holding one check class ``C`` with ``body`` as its class attributes."""
    return f"""
from dldoctor.api import Check, DiagnosisInfo, Range, Severity, Stage

INFO = DiagnosisInfo(title="T {name}", explanation="E.", evidence=("e",), fixes=("f {name}",))


class C(Check):
    '''A check.'''

    name = "{name}"
{body}

    def run(self, ctx):
        return []
"""


# ------------------------------------------------------------------ the API


def test_api_imports_no_torch_and_dldoctor_help_neither():
    code = ("import sys, dldoctor.api, dldoctor; assert 'torch' not in sys.modules, 'torch imported'; "
            "from typer.testing import CliRunner; from dldoctor.cli.app import app; "
            "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
            "assert 'torch' not in sys.modules, 'torch imported by --help'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_check_context_lists_what_checks_use_and_the_real_context_has_it():
    from dldoctor.core.context import Context

    wanted = {"config", "spec", "device", "seed", "findings", "forward_fn", "task", "num_classes", "fresh_model",
              "make_optimizer", "batches", "first_batch", "has_split", "loader", "read", "measure", "time_left",
              "report_progress"}
    declared = {n for n in dir(CheckContext) if not n.startswith("_")} | set(CheckContext.__annotations__)
    assert wanted <= declared
    methods = {n for n in declared if callable(getattr(CheckContext, n, None)) or isinstance(
        getattr(CheckContext, n, None), property)}
    missing = [n for n in methods if not hasattr(Context, n)]
    assert not missing, f"CheckContext promises what Context lacks: {missing}"
    instance_attrs = set(Context.__init__.__code__.co_names)
    assert set(CheckContext.__annotations__) <= instance_attrs


# ------------------------------------------------- declaring IDs on a check


def test_a_check_declares_its_own_id_and_finding_fills_the_fixes_from_it():
    class Own(Check):
        """Own."""

        name = "test-own-id"
        emits = ("lr-too-high",)
        catalogue: ClassVar[dict[str, DiagnosisInfo]] = {"test-own-diagnosis": INFO}

        def run(self, ctx: CheckContext) -> list[Finding]:
            return []

    assert Own.emits == ("lr-too-high", "test-own-diagnosis")  # declared IDs are emitted
    f = Own().finding("test-own-diagnosis", Severity.WARNING, 0.8)
    assert f.fixes == INFO.fixes and f.title == INFO.title and f.check == "test-own-id"
    borrowed = Own().finding("lr-too-high", "warning", 0.5)
    assert borrowed.fixes == catalogue.get("lr-too-high").fixes


@pytest.mark.parametrize("body, message", [
    ('    catalogue = {"lr-too-high": INFO}', "is a built-in diagnosis ID"),
    ('    catalogue = {"Not_Kebab": INFO}', "is not kebab-case"),
    ('    catalogue = {"x-y": {"title": "t"}}', "must be a DiagnosisInfo"),
    ('    emits = ("unknown-thing",)', "emits unknown diagnosis IDs"),
    ('    catalogue = {"x-y": DiagnosisInfo("t", "e", fixes=("f",), explains=("nope",))}', "explains ['nope']"),
    ('    config = {"sec": {"k": (2.0, Range(0, 1))}}', "the default 2.0 is out of range: must be in [0, 1]"),
    ('    config = {"sec": {"k": object()}}', "cannot be set from a config file"),
    ('    config = {"sec": {"k": (1, "not a rule")}}', "must be a Range, Choice, Flag or Size"),
    ('    config = {"profiles": {"k": 1}}', "not a valid section name"),
])
def test_malformed_declarations_fail_at_class_definition(body, message):
    namespace: dict = {}
    with pytest.raises(TypeError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        exec(source("test-malformed", body), namespace)


def test_diagnosis_info_rejects_empty_text():
    with pytest.raises(TypeError, match="at least one fix"):
        DiagnosisInfo(title="t", explanation="e")
    with pytest.raises(TypeError, match="tuple of strings"):
        DiagnosisInfo(title="t", explanation="e", fixes="one string")


# -------------------------------------------------------- loading plugins


def test_a_plugins_ids_and_config_are_registered_when_it_loads(install_plugin):
    install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    registered, failures = discover()
    assert not failures
    assert {r.check.name: r.source for r in registered}["plugin-good"] == "plugin:dd-good"
    entry = catalogue.get("plugin-root-cause")
    assert entry.title == "Plugin root cause" and entry.family == "plugin dd-good"
    assert catalogue.owners("plugin-root-cause") == ("plugin-good",)
    assert "plugin-root-cause" in catalogue.closest("plugin-root-caus")
    load_plugins(enabled=False)
    assert not catalogue.known("plugin-root-cause")


@pytest.mark.parametrize("second, why", [
    ('    catalogue = {"plugin-root-cause": INFO}',
     "diagnosis ID 'plugin-root-cause' of check 'second' is already declared by plugin entry point 'a-good' "
     "with a different entry"),
    ('    config = {"plugin_good": {"threshold": (0.5, Range(0, 2))}}',
     "config section 'plugin_good' of check 'second' is already declared by plugin entry point 'a-good'"),
    ('    config = {"run": {"seed": 1}}', "config section 'run' of check 'second' is a built-in section"),
])
def test_collisions_with_another_plugin_or_a_builtin_are_load_errors_naming_both(install_plugin, second, why):
    install_plugin("dd-good", {"a-good": "dd_good:Good"}, {"dd_good": GOOD})
    install_plugin("dd-second", {"b-second": "dd_second:C"}, {"dd_second": source("second", second)})
    registered, failures = discover()
    assert [(f.name, f.dist) for f in failures] == [("b-second", "dd-second")]
    assert failures[0].error.startswith(why), failures[0].error
    assert "plugin entry point 'b-second' (= dd_second:C, from dd-second)" in failures[0].message()
    names = {r.check.name for r in registered}
    assert "plugin-good" in names and "second" not in names  # the failed entry point is left out whole


def test_a_plugin_check_named_like_a_builtin_and_an_empty_module_fail_to_load(install_plugin):
    install_plugin("dd-bad", {"clash": "dd_clash:C", "empty": "dd_empty"},
                   {"dd_clash": source("forward-pass", ""), "dd_empty": "X = 1\n"})
    _, failures = discover()
    why = {f.name: f.error for f in failures}
    assert why["clash"].startswith("check name 'forward-pass' (C) is already registered by a built-in check")
    assert why["empty"] == "it names no dldoctor Check subclass"


def test_identical_declarations_of_one_id_by_two_checks_of_a_plugin_are_fine(install_plugin):
    shared = '''
from dldoctor.api import Check, DiagnosisInfo, Stage

INFO = DiagnosisInfo(title="Shared", explanation="E.", fixes=("f",))


class A(Check):
    """A."""
    name = "shared-a"
    catalogue = {"shared-id": INFO}
    config = {"shared": {"k": 1}}


class B(Check):
    """B."""
    name = "shared-b"
    catalogue = {"shared-id": INFO}
    config = {"shared": {"k": 1}}
'''
    install_plugin("dd-shared", {"both": "dd_shared"}, {"dd_shared": shared})
    _, failures = discover()
    assert not failures
    assert catalogue.owners("shared-id") == ("shared-a", "shared-b")


# ------------------------------------------------------------------ config


def test_plugin_keys_get_defaults_and_are_validated_like_builtin_keys(install_plugin, tmp_path):
    install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    config = load_config()
    assert config.section("plugin_good") == {"threshold": 0.5, "mode": "fast"}

    good = tmp_path / "good.yaml"
    good.write_text("plugin_good:\n  threshold: 0.25\nprofiles:\n  quick:\n    plugin_good:\n      threshold: 1\n")
    assert load_config(config_file=good).get("plugin_good.threshold") == 0.25
    assert load_config(config_file=good, profile="quick").get("plugin_good.threshold") == 1.0

    bad = tmp_path / "bad.yaml"
    bad.write_text("plugin_good:\n  threshold: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_file=bad)
    assert err.value.message == f"--config {bad}: plugin_good.threshold = 1.5 is out of range: must be in [0, 1] " \
                                "(a fraction)"
    bad.write_text("plugin_good:\n  mode: 3\n")
    with pytest.raises(ConfigError, match=r"config key 'plugin_good\.mode' must be a string, got 3"):
        load_config(config_file=bad)
    bad.write_text("plugin_good:\n  thresold: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'plugin_good\.thresold'"):
        load_config(config_file=bad)
    bad.write_text("profiles:\n  thorough:\n    plugin_good:\n      threshold: -1\n")
    with pytest.raises(ConfigError, match=r"\(profiles.thorough\): plugin_good.threshold = -1 is out of range"):
        load_config(config_file=bad)


def test_pyproject_sets_a_plugin_key(install_plugin, tmp_path):
    install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.dldoctor.plugin_good]\nthreshold = 0.75\n")
    assert load_config(project).get("plugin_good.threshold") == 0.75
    (project / "pyproject.toml").write_text("[tool.dldoctor.plugin_good]\nthreshold = 7\n")
    with pytest.raises(ConfigError, match=r"\[tool.dldoctor\]: plugin_good.threshold = 7 is out of range"):
        load_config(project)


def test_without_the_plugin_its_section_is_an_unknown_key(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("plugin_good:\n  threshold: 0.25\n")
    with pytest.raises(ConfigError, match="unknown config key 'plugin_good'"):
        load_config(config_file=cfg)


# ----------------------------------------------------------------- ranking


def _f(id: str, check: str, severity: str = "warning") -> Finding:
    return Finding(id=id, severity=severity, confidence=0.9, title=id, check=check, stage="run")


def test_a_borrowed_builtin_id_does_not_inherit_its_explains_links():
    plugins = {"plugin-borrower": frozenset()}
    symptom = _f("exploding-gradients", "gradient-flow")
    # lr-too-high explains exploding-gradients, but only from a check that owns lr-too-high.
    by_builtin = {f.id: f for f in rank([_f("lr-too-high", "lr-range"), symptom], plugin_checks=plugins)}
    by_plugin = {f.id: f for f in rank([_f("lr-too-high", "plugin-borrower"), symptom], plugin_checks=plugins)}
    merged = {f.id: f for f in rank([_f("lr-too-high", "plugin-borrower"), _f("lr-too-high", "lr-range", "info"),
                                     symptom], plugin_checks=plugins)}
    assert by_builtin["exploding-gradients"].explained_by == "lr-too-high"
    assert by_plugin["exploding-gradients"].explained_by is None
    assert merged["exploding-gradients"].explained_by == "lr-too-high"  # a built-in check found it too
    # The borrowed finding itself may still be explained by a built-in root cause.
    explained = {f.id: f for f in rank([_f("loss-input-probabilities", "loss-inputs", "error"),
                                        _f("lr-too-low", "plugin-borrower")], plugin_checks=plugins)}
    assert explained["lr-too-low"].explained_by == "loss-input-probabilities"


def test_a_plugin_id_explains_from_its_owner_only(install_plugin):
    install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    registered, _ = discover()
    from dldoctor.core.registry import plugin_ownership

    owners = plugin_ownership(registered)
    assert owners["plugin-good"] == frozenset({"plugin-root-cause"})
    ranked = {f.id: f for f in rank([_f("plugin-root-cause", "plugin-good"), _f("exploding-gradients", "numerics")],
                                    plugin_checks=owners)}
    assert ranked["exploding-gradients"].explained_by == "plugin-root-cause"


# --------------------------------------------------------------- end to end


def test_a_plugin_runs_with_its_own_id_and_config_in_process(install_plugin, make_project, tmp_path):
    from tests.conftest import HEALTHY_BODY, diagnose_file

    install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("plugin_good:\n  threshold: 0.125\n")
    diagnosis = diagnose_file(make_project(HEALTHY_BODY), select=("plugin-root-cause",), config_file=cfg)
    [finding] = [f for f in diagnosis.diagnoses if f.id == "plugin-root-cause"]
    assert finding.check == "plugin-good" and finding.fixes == ("Fix the root.", "Then check again.")
    assert finding.metrics["threshold"] == 0.125


@pytest.mark.slow
def test_explain_and_checks_show_a_plugin(install_plugin):
    from tests.conftest import run_cli

    site = install_plugin("dd-good", {"good": "dd_good:Good"}, {"dd_good": GOOD})
    env = {"PYTHONPATH": str(site)}
    shown = run_cli("explain", "plugin-root-cause", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "plugin-root-cause: Plugin root cause" in shown.stdout and "1. Fix the root." in shown.stdout
    assert "(plugin dd-good)" in shown.stdout and "Often explains exploding-gradients" in shown.stdout
    listing = run_cli("checks", env=env)
    assert listing.returncode == 0 and "plugin-root-cause" in listing.stdout


def test_readme_plugin_section_names_the_api():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Plugins", 1)[1].split("\n## ", 1)[0]
    for needle in ("dldoctor.api", "self.finding", "catalogue", "config", "examples/plugin", "exit"):
        assert needle in section, needle
