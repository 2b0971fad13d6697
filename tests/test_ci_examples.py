"""The CI examples (examples/ci/) are valid YAML and call dldoctor as it is: every subcommand and
option they use exists, their --format/--output combination is one the CLI accepts, and they keep
the reports they write."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CI = REPO / "examples" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def github_commands(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def gitlab_commands(pipeline: dict) -> list[str]:
    return [line for job in pipeline.values() if isinstance(job, dict)
            for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def dldoctor_calls(commands: list[str]) -> list[list[str]]:
    """The arguments of every ``dldoctor`` call in the shell lines (after the executable)."""
    calls = []
    for command in commands:
        for line in command.splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if Path(word).name == "dldoctor":
                    calls.append(words[i + 1:])
    return calls


def option_values(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, word in enumerate(args[:-1]) if word == name]


def check_against_the_cli(args: list[str]) -> None:
    """Every option ``args`` uses is one its subcommand declares, and the reports resolve."""
    import typer

    from dldoctor.cli.app import app
    from dldoctor.cli.common import resolve_reports
    from dldoctor.render import OutputFormat

    group = typer.main.get_command(app)
    subcommand, *rest = args
    assert subcommand in group.commands, f"dldoctor has no subcommand {subcommand!r}"
    declared = {opt for param in group.commands[subcommand].params for opt in param.opts}
    used = [w.split("=", 1)[0] for w in rest if w.startswith("-") and w != "--"]
    unknown = [w for w in used if w not in declared]
    assert not unknown, f"dldoctor {subcommand} has no option {unknown}"
    targets = [w for w in rest if w.endswith(".py")]
    assert targets and all((REPO / t).is_file() for t in targets), f"no such training file in {rest}"
    resolve_reports([OutputFormat(f) for f in option_values(rest, "--format")],
                    [Path(p) for p in option_values(rest, "--output")])


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_the_examples_are_valid_yaml_calling_the_real_cli(path):
    data = load(path)
    calls = dldoctor_calls(github_commands(data) if path is GITHUB else gitlab_commands(data))
    assert calls, f"{path.name} never runs dldoctor"
    for args in calls:
        check_against_the_cli(args)
    text = path.read_text(encoding="utf-8")
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text


def test_the_github_workflow_annotates_caches_and_uploads_its_reports():
    from dldoctor.cli.common import resolve_reports
    from dldoctor.render import OutputFormat

    workflow = load(GITHUB)
    assert workflow.get("on", workflow.get(True)), "no trigger"  # PyYAML reads the key `on` as True
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert {"actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-artifact"} <= set(uses)
    assert ".venv" in uses["actions/cache"]["with"]["path"] and "hashFiles(" in uses["actions/cache"]["with"]["key"]
    (args,) = dldoctor_calls(github_commands(workflow))
    outputs = option_values(args, "--output")
    reports = resolve_reports([OutputFormat(f) for f in option_values(args, "--format")], [Path(p) for p in outputs])
    on_stdout = [r.fmt for r in reports if r.path is None]
    assert on_stdout == [OutputFormat.GITHUB], "the annotations must go to stdout"
    assert OutputFormat.HTML in {r.fmt for r in reports if r.path is not None}
    uploaded = uses["actions/upload-artifact"]["with"]["path"].split()
    assert sorted(uploaded) == sorted(outputs), "every report written must be uploaded"
    assert uses["actions/upload-artifact"].get("if") == "always()", "keep the reports of a failing run too"


def test_the_gitlab_job_caches_and_keeps_its_reports_with_junit():
    from dldoctor.cli.common import resolve_reports
    from dldoctor.render import OutputFormat

    (job,) = [j for j in load(GITLAB).values() if isinstance(j, dict) and "script" in j]
    assert ".venv" in job["cache"]["paths"] and job["cache"]["key"]["files"]
    (args,) = dldoctor_calls(gitlab_commands({"job": job}))
    outputs = option_values(args, "--output")
    reports = resolve_reports([OutputFormat(f) for f in option_values(args, "--format")], [Path(p) for p in outputs])
    junit = [str(r.path) for r in reports if r.fmt is OutputFormat.JUNIT and r.path is not None]
    assert junit == [job["artifacts"]["reports"]["junit"]], "the JUnit report must be the one GitLab reads"
    assert sorted(job["artifacts"]["paths"]) == sorted(outputs)
    assert job["artifacts"]["when"] == "always"


def test_the_cli_check_catches_a_wrong_option():
    with pytest.raises(AssertionError, match="no option"):
        check_against_the_cli(["run", "examples/digits/train.py", "--formt", "json"])
    with pytest.raises(AssertionError, match="no subcommand"):
        check_against_the_cli(["diagnose", "examples/digits/train.py"])
    from dldoctor.core.errors import DldoctorError

    with pytest.raises(DldoctorError, match="suffix names html"):  # github paired with the .html file
        check_against_the_cli(["run", "examples/digits/train.py", "--format", "github", "--output", "r.html"])
