import sys

import pytest

from dldoctor.core.registry import AUTOLOAD_ENV, discover
from tests.conftest import HEALTHY_BODY, run_cli, run_json

PLUGIN = '''
from dldoctor import Check, Severity, Stage


class AlwaysInfo(Check):
    """A third-party check that always reports an info finding."""

    name = "plugin-always-info"
    stage = Stage.RUN
    emits = ("class-imbalance",)

    def run(self, ctx):
        batch = ctx.first_batch()
        return [self.finding("class-imbalance", Severity.INFO, 0.3, title=f"saw a batch of {len(batch[1])}")]
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A fake installed distribution declaring a dldoctor.checks entry point."""
    (tmp_path / "dd_test_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "dd_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dd-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dldoctor.checks]\nalways = dd_test_plugin:AlwaysInfo\n"
                                           "broken = dd_test_plugin_missing:Nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("dd_test_plugin", None)


def test_builtin_checks_are_registered():
    registered, _ = discover(plugins=False)
    assert "forward-pass" in {r.check.name for r in registered}
    assert all(r.source == "builtin" for r in registered)


def test_entry_point_plugin_is_listed_and_a_broken_one_is_reported(plugin_path):
    registered, failures = discover()
    sources = {r.check.name: r.source for r in registered}
    assert sources["plugin-always-info"] == "plugin:dd-test-plugin"
    assert [f.name for f in failures] == ["broken"]


def test_autoload_can_be_turned_off(plugin_path, monkeypatch):
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    registered, failures = discover()
    assert "plugin-always-info" not in {r.check.name for r in registered} and not failures


@pytest.mark.slow
def test_plugin_runs_in_the_real_cli(plugin_path, make_project):
    target = make_project(HEALTHY_BODY)
    proc, report = run_json("run", target, env={"PYTHONPATH": str(plugin_path)})
    # The broken entry point's checks did not run: the run is incomplete (exit 1), not healthy.
    assert proc.returncode == 1, proc.stderr
    assert report["status"] == "incomplete"
    mine = [d for d in report["diagnoses"] if d["check"] == "plugin-always-info"]
    assert [d["id"] for d in mine] == ["class-imbalance"]
    assert mine[0]["title"] == "saw a batch of 32"
    names = {c["name"]: c["status"] for c in report["checks"]}
    assert names["plugin-always-info"] == "passed" and names["plugin:broken"] == "errored"
    [incomplete] = [d for d in report["diagnoses"] if d["check"] == "plugin:broken"]
    assert incomplete["id"] == "check-incomplete" and "ModuleNotFoundError" in incomplete["title"]
    listing = run_cli("checks", env={"PYTHONPATH": str(plugin_path)})
    assert "plugin-always-info" in listing.stdout
    # ... and `dldoctor checks` says which entry point failed and why, with exit 2.
    assert listing.returncode == 2
    assert "plugin entry point 'broken' (= dd_test_plugin_missing:Nope, from dd-test-plugin) failed to load: " \
           "ModuleNotFoundError" in listing.stderr



def test_a_check_that_requires_a_config_switch_is_skipped_until_it_is_on(make_project):
    from dldoctor.core.runner import RunOptions, diagnose
    from tests.conftest import HEALTHY_BODY

    path = str(make_project(HEALTHY_BODY))
    off = diagnose(RunOptions(target=path, device="cpu", select=("lr-range",)))
    on = diagnose(RunOptions(target=path, device="cpu", select=("lr-range",),
                             overrides=(("lr_finder.enabled", True),)))
    [off_result] = [c for c in off.checks if c.name == "lr-range"]
    [on_result] = [c for c in on.checks if c.name == "lr-range"]
    assert off_result.status.value == "skipped" and "lr_finder.enabled is off" in off_result.reason
    assert on_result.status.value == "passed"
