"""Several reports from one run: repeated --format/--output, suffixes, and the usage errors."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dldoctor.cli import common as c
from dldoctor.cli.app import app
from dldoctor.cli.diagnose_cmd import fail_fatal, interrupted
from dldoctor.render import OutputFormat as F
from tests.conftest import HEALTHY_BODY, run_cli
from tests.render.format_cases import DIAGNOSIS, FATAL

CRASH_BODY = HEALTHY_BODY.replace("nn.Linear(16, 2)", "nn.Linear(12, 2)")


@pytest.mark.parametrize("formats,outputs,expected", [
    ([], [], [(F.RICH, None)]),
    ([F.JSON], [], [(F.JSON, None)]),
    ([], ["a.json", "b.xml", "c.sarif", "d.html", "e.md", "f.sarif.json", "g.txt"],
     [(F.JSON, "a.json"), (F.JUNIT, "b.xml"), (F.SARIF, "c.sarif"), (F.HTML, "d.html"), (F.MARKDOWN, "e.md"),
      (F.SARIF, "f.sarif.json"), (F.RICH, "g.txt")]),  # an unknown suffix with no --format: rich, as before
    ([F.JSON, F.MARKDOWN], ["a.txt", "b.txt"], [(F.JSON, "a.txt"), (F.MARKDOWN, "b.txt")]),  # paired in order
    ([F.GITHUB], ["r.sarif", "r.xml"], [(F.SARIF, "r.sarif"), (F.JUNIT, "r.xml"), (F.GITHUB, None)]),
    ([F.JSON, F.GITHUB], ["r.json"], [(F.JSON, "r.json"), (F.GITHUB, None)]),
])
def test_reports_from_formats_and_outputs(formats, outputs, expected):
    reports = c.resolve_reports(formats, [Path(o) for o in outputs])
    assert [(r.fmt, str(r.path) if r.path else None) for r in reports] == expected


@pytest.mark.parametrize("args,needle", [
    (["-f", "json", "-f", "junit"], "only one report can go to stdout"),
    (["-f", "junit", "-o", "r.json"], "its suffix names json"),
    (["-f", "github", "-o", "a.sarif", "-o", "b.txt"], "cannot tell which format goes to --output"),
    (["-f", "json", "-f", "junit", "-f", "sarif", "-o", "r.md"], "have no --output"),
    (["-o", "r.json", "-o", "r.json"], "given more than once"),
])
def test_ambiguous_combinations_are_usage_errors(tmp_path, args, needle):
    args = [a if not a.startswith("r.") and a not in ("a.sarif", "b.txt") else str(tmp_path / a) for a in args]
    result = CliRunner().invoke(app, ["run", str(tmp_path / "train.py"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was written


def test_help_names_every_format():
    import typer.main

    (param,) = [p for p in typer.main.get_command(app).commands["run"].params if p.name == "fmt"]
    assert "rich, json, markdown, junit, github, sarif or html" in param.help
    assert param.multiple


def test_fatal_and_interrupted_paths_write_every_requested_report(tmp_path, capsys):
    reports = (c.Report(F.JSON, tmp_path / "r.json"), c.Report(F.JUNIT, tmp_path / "r.xml"), c.Report(F.RICH))
    with pytest.raises(typer.Exit) as exited:
        fail_fatal(FATAL, reports)
    assert exited.value.exit_code == 2
    assert json.loads((tmp_path / "r.json").read_text())["diagnoses"][0]["id"] == "entrypoint-error"
    assert ET.parse(tmp_path / "r.xml").getroot().find("testcase/failure").get("type") == "entrypoint-error"
    assert capsys.readouterr().out == ""  # the rich report to stdout is replaced by the message on stderr
    partial = (c.Report(F.SARIF, tmp_path / "p.sarif"), c.Report(F.MARKDOWN, tmp_path / "p.md"))
    with pytest.raises(SystemExit) as stopped:
        interrupted(DIAGNOSIS, partial)
    assert stopped.value.code == 130
    assert json.loads((tmp_path / "p.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "p.md").read_text().startswith("## dldoctor:")


@pytest.mark.slow
def test_one_run_writes_json_junit_sarif_and_github_with_the_same_findings(make_project, tmp_path):
    target = make_project(CRASH_BODY)
    out = tmp_path / "out"
    proc = run_cli("probe", target, "--select", "forward-pass", "-o", out / "r.json", "-o", out / "r.xml",
                   "-o", out / "r.sarif", "-f", "github", env={"GITHUB_STEP_SUMMARY": ""})
    assert proc.returncode == 1, proc.stderr
    report = json.loads((out / "r.json").read_text())
    errors = [(d["id"], d["title"]) for d in report["diagnoses"] if d["severity"] == "error"]
    assert errors and errors[0][0] == "shape-mismatch"
    top = report["diagnoses"][0]
    assert Path(top["file"]).resolve() == target.resolve() and top["line"] > 0
    failures = [(f.get("type"), f.get("message")) for f in ET.parse(out / "r.xml").getroot().iter("failure")]
    assert failures == errors
    sarif = json.loads((out / "r.sarif").read_text())["runs"][0]["results"]
    assert [r["ruleId"] for r in sarif] == [d["id"] for d in report["diagnoses"]]
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == len(errors) and annotations[0].startswith("::error file=")
    assert f",line={top['line']}," in annotations[0]
    assert proc.stderr.count("report written to") == 3
