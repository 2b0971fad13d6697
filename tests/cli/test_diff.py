"""``dldoctor diff``: findings new, fixed and changed between two reports, measurements judged
against their noise, the exit codes; and the measurements that reports carry."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from dldoctor.cli.app import app
from dldoctor.core.diagnosis import Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.measurement import Measurement, format_value
from dldoctor.core.report_diff import compare_measurement, diff_reports, load_report
from tests.conftest import REPO

DIGITS = REPO / "examples" / "digits" / "train.py"


def finding(id_, severity="warning", check="c", location="", title="t"):
    return {"id": id_, "severity": severity, "check": check, "location": location, "title": title}


def measured(value, noise=None, better=None, unit=""):
    return {"value": value, "unit": unit, "noise": noise, "better": better, "check": "c", "title": ""}


def report(diagnoses=(), measurements=None, target="train.py"):
    return {"dldoctor_version": "0", "target": target, "status": "healthy", "diagnoses": list(diagnoses),
            "measurements": measurements or {}}


# -- findings ---------------------------------------------------------------------------------
def test_findings_are_matched_by_id_check_and_location():
    old = report([finding("lr-too-high", "error", "overfit-batch", "optimizer"),
                  finding("dead-activations", "warning", "gradient-dynamics", "fc1"),
                  finding("class-imbalance", "info", "class-imbalance", "data")])
    new = report([finding("dead-activations", "warning", "gradient-dynamics", "fc2"),  # another layer: new
                  finding("class-imbalance", "warning", "class-imbalance", "data"),    # info -> warning
                  finding("batch-mixing", "info", "batch-mixing", "model")])         # a new note
    diff = diff_reports(old, new)
    kinds = [(f.kind, f.id, f.location, f.worse) for f in diff.findings]
    assert kinds == [("new", "dead-activations", "fc2", True), ("new", "batch-mixing", "model", False),
                     ("changed", "class-imbalance", "data", True),
                     ("fixed", "lr-too-high", "optimizer", False), ("fixed", "dead-activations", "fc1", False)]
    assert diff.worse
    assert diff.regressions[:2] == ["new warning dead-activations (gradient-dynamics, fc2)",
                                    "class-imbalance (class-imbalance, data) went from info to warning"]


def test_fixes_and_a_severity_going_down_are_not_worse():
    old = report([finding("lr-too-high", "error"), finding("overfitting", "warning")])
    new = report([finding("overfitting", "info")])
    diff = diff_reports(old, new)
    assert [(f.kind, f.id, f.worse) for f in diff.findings] == [("changed", "overfitting", False),
                                                                 ("fixed", "lr-too-high", False)]
    assert not diff.worse and diff.regressions == []


# -- measurements -----------------------------------------------------------------------------
def test_a_change_beyond_two_combined_standard_errors_is_worse_in_the_direction_that_is_worse():
    old = measured(0.10, 0.01, "lower")
    assert compare_measurement("e", old, measured(0.13, 0.01, "lower")).verdict == "worse"   # z = 2.12
    assert compare_measurement("e", old, measured(0.12, 0.01, "lower")).verdict == "within noise"  # z = 1.41
    assert compare_measurement("e", old, measured(0.07, 0.01, "lower")).verdict == "better"
    up = compare_measurement("acc", measured(0.9, 0.01, "higher"), measured(0.85, 0.01, "higher"))
    assert up.verdict == "worse" and up.z == pytest.approx(0.05 / math.sqrt(2e-4))
    # a direction-less measurement that moved is reported, never called worse
    assert compare_measurement("n", measured(1.0, 0.1), measured(2.0, 0.1)).verdict == "changed"


def test_without_noise_a_relative_change_above_ten_percent_counts():
    assert compare_measurement("m", measured(100), measured(115, better="higher")).verdict == "better"
    assert compare_measurement("m", measured(100, better="higher"), measured(85)).verdict == "worse"
    assert compare_measurement("m", measured(100, better="higher"), measured(95)).verdict == "within noise"
    # noise on one side only is no noise model for the change
    one_sided = compare_measurement("m", measured(100, 1.0, "higher"), measured(95))
    assert one_sided.z is None and one_sided.verdict == "within noise"


def test_a_timing_must_also_change_by_a_factor_of_two():
    def rate(v):
        return measured(v, 300.0, "higher", "samples/s")

    slower = compare_measurement("throughput.samples_per_s", rate(6000), rate(3500))
    assert slower.z > 5 and slower.verdict == "within noise" and "x1.71" in slower.rule
    assert compare_measurement("throughput.samples_per_s", rate(6000), rate(2500)).verdict == "worse"


def test_measurements_only_one_report_has_are_listed_not_judged():
    diff = diff_reports(report(measurements={"a": measured(1.0, better="lower")}),
                        report(measurements={"b": measured(5.0, better="lower")}))
    assert [(m.name, m.verdict) for m in diff.measurements] == [("a", "only in old"), ("b", "only in new")]
    assert not diff.worse


def test_the_json_form_carries_the_verdicts():
    diff = diff_reports(report(measurements={"e": measured(0.1, 0.01, "lower")}),
                        report([finding("x", "error")], measurements={"e": measured(0.2, 0.01, "lower")}))
    data = diff.to_dict()
    assert data["worse"] is True
    assert [m["verdict"] for m in data["measurements"]] == ["worse"]
    assert data["findings"][0]["kind"] == "new" and data["findings"][0]["worse"] is True
    json.dumps(data)  # plain data


# -- reading the files, exit codes --------------------------------------------------------------
def write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_bad_files_are_usage_errors_naming_the_file(tmp_path):
    runner = CliRunner()
    good = write(tmp_path / "good.json", report())
    cases = {"missing.json": ("no such file", None), "text.json": ("not JSON", "{oops"),
             "other.json": ("not a dldoctor JSON report", {"hello": 1}),
             "bad_measure.json": ("its 'measurements' is not an object", {**report(), "measurements": {"a": 3}})}
    for name, (message, content) in cases.items():
        path = tmp_path / name if content is None else write(tmp_path / name, content)
        result = runner.invoke(app, ["diff", str(good), str(path)])
        assert result.exit_code == 2, (name, result.output)
        assert f"{name}: {message}" in result.output and "Traceback" not in result.output


def test_exit_codes_and_markdown(tmp_path):
    runner = CliRunner()
    old = write(tmp_path / "old.json", report(measurements={"e": measured(0.1, 0.01, "lower", "error")}))
    same = write(tmp_path / "same.json", report(measurements={"e": measured(0.11, 0.01, "lower", "error")}))
    worse = write(tmp_path / "worse.json", report([finding("lr-too-high", "error", "overfit-batch", "optimizer")],
                                                  measurements={"e": measured(0.3, 0.01, "lower", "error")}))
    ok = runner.invoke(app, ["diff", str(old), str(same)])
    assert ok.exit_code == 0 and "nothing got worse" in ok.output
    bad = runner.invoke(app, ["diff", str(old), str(worse), "--format", "markdown"])
    assert bad.exit_code == 1
    assert "## dldoctor diff: ❌ worse: 2 regression(s)" in bad.output
    assert "- new error lr-too-high (overfit-batch, optimizer)" in bad.output
    assert "| `e` | 0.1 ± 0.01 error | 0.3 ± 0.01 error | ❌ worse |" in bad.output
    as_json = runner.invoke(app, ["diff", str(old), str(worse), "--format", "json"])
    assert as_json.exit_code == 1 and json.loads(as_json.output)["worse"] is True


# -- measurements in reports ----------------------------------------------------------------------
def test_measurements_round_trip_and_render():
    m = Measurement(1234.5, unit="samples/s", noise=12.0, better="higher", check="input-pipeline",
                    title="throughput")
    d = Diagnosis("0", "train.py", (Finding(id="lr-too-high", severity="error", confidence=0.9, title="t"),),
                  measurements={"throughput.samples_per_s": m.to_dict()})
    data = json.loads(json.dumps(d.to_dict()))
    assert list(data)[-1] == "measurements" and data["measurements"]["throughput.samples_per_s"]["noise"] == 12.0
    back = Diagnosis.from_dict(data)
    assert Measurement.from_dict(back.measurements["throughput.samples_per_s"]) == m
    assert Diagnosis.from_dict({"dldoctor_version": "0", "target": "t"}).measurements == {}

    from dldoctor.render import OutputFormat, render

    md = render(back, OutputFormat.MARKDOWN)
    assert "**Measurements**" in md and "| `throughput.samples_per_s` | 1,234 ± 12 samples/s | throughput |" in md
    rich = render(back, OutputFormat.RICH)
    assert "measurements" in rich and "1,234 ± 12 samples/s" in rich


def test_a_measurement_is_a_finite_number_with_a_known_direction():
    with pytest.raises(ValueError, match="finite"):
        Measurement(math.nan)
    with pytest.raises(ValueError, match="'better'"):
        Measurement(1.0, better="up")  # type: ignore[arg-type]
    assert Measurement(3.0, noise=math.inf).noise is None  # an infinite error is no estimate
    assert format_value(0.25, "share of step time", 0.02) == "25.0% ± 2% of step time"
    assert format_value(2_500_000, "B") == "2.5 MB"


def test_checks_record_measurements_through_the_context(make_project):
    from dldoctor.api import Check, Stage
    from dldoctor.core.pipeline import run_checks

    class Probe(Check):
        name = "probe-measured"
        stage = Stage.RUN
        abstract = True  # not registered

        def run(self, ctx):
            ctx.measured("probe.scale", 2.5, unit="x", noise=0.1, better="lower", title="a scale")
            return []

    class Ctx:
        config = type("C", (), {"get": staticmethod(lambda key: 10.0)})()
        loaded = type("L", (), {"spec": object()})()
        deadline = None

    from dldoctor.core.context import Context

    ctx = Ctx()
    ctx.recorded, ctx.running_check, ctx.findings = {}, "", []
    ctx.measured = Context.measured.__get__(ctx)
    ctx.unmet = lambda requirement: None
    run_checks(ctx, [Probe])
    assert ctx.recorded["probe.scale"] == Measurement(2.5, "x", 0.1, "lower", "probe-measured", "a scale")
    with pytest.raises(ValueError, match="lower-case words"):
        ctx.measured("Bad Name", 1.0)


# -- real reports ------------------------------------------------------------------------------------
def _report(path, seed=0):
    from dldoctor.core.stage import Stage
    from tests.conftest import diagnose_file

    stages = tuple(Stage.parse(s) for s in ("run", "overfit", "evaluate"))
    return diagnose_file(path, stages=stages, profile="quick", seed=seed).to_dict()


@pytest.fixture(scope="module")
def healthy_digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diff")
    return write(folder / "healthy.json", _report(DIGITS))


@pytest.mark.slow
@pytest.mark.serial  # it asserts no timing got worse: that needs the machine alone (see the test below)
def test_a_learning_rate_100x_too_high_is_named_as_the_regression(healthy_digits, tmp_path):
    variant = tmp_path / "train_fast_lr.py"
    variant.write_text(f'''import importlib.util

_spec = importlib.util.spec_from_file_location("digits_example", {str(DIGITS)!r})
digits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(digits)


def dldoctor_spec():
    return digits.dldoctor_spec(lr=0.1)  # the example's 1e-3, x100
''')
    new = write(tmp_path / "fast_lr.json", _report(variant))
    result = CliRunner().invoke(app, ["diff", str(healthy_digits), str(new)])
    assert result.exit_code == 1, result.output
    diff = diff_reports(load_report(healthy_digits), load_report(new))
    assert any(f.kind == "new" and f.id == "lr-too-high" and f.new_severity == "error" for f in diff.findings)
    assert "new error lr-too-high (overfit-batch, optimizer)" in result.output
    worse = {m.name for m in diff.measurements if m.worse}
    assert "short_run.val_error" in worse and not any(n.startswith(("memory.", "throughput.")) for n in worse)


@pytest.mark.slow
@pytest.mark.serial  # its throughput comparison needs the machine alone: beside the parallel phase's
# distributed tests (2 ranks and a launcher each) two runs' throughput moved 2.34x, past diff's 2x for timings
def test_two_healthy_runs_with_different_seeds_do_not_differ(healthy_digits, tmp_path):
    other = write(tmp_path / "seed1.json", _report(DIGITS, seed=1))
    for old, new in ((healthy_digits, other), (other, healthy_digits)):
        result = CliRunner().invoke(app, ["diff", str(old), str(new), "--format", "json"])
        data = json.loads(result.output)
        assert result.exit_code == 0, data["regressions"]
        assert [m["name"] for m in data["measurements"] if m["verdict"] == "worse"] == []
        judged = {m["name"] for m in data["measurements"] if not m["verdict"].startswith("only")}
        assert {"short_run.val_error", "overfit.steps_to_fit", "memory.peak_bytes",
                "throughput.samples_per_s"} <= judged
