"""The documentation in the repository (README.md, docs/) stays true: links resolve inside the
project, tables list what the code has, and the examples run."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.report_contract import schema_errors

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md")), *sorted((REPO / "examples").glob("*/README.md")),
         REPO / "benchmarks" / "README.md"]
#: ``[text](target)``, outside code spans; the target up to the first space or ``)``.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The Markdown without fenced code blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists()], ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve_inside_the_repository(page):
    problems = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # a URL: only the web, never a local file
            if not target.startswith(("https://", "http://", "mailto:")):
                problems.append(f"{target}: not a web link")
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if file_part.startswith("/") or not resolved.is_relative_to(REPO):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    assert not problems, f"{page.relative_to(REPO)}:\n" + "\n".join(problems)
    assert "shared/" not in page.read_text(encoding="utf-8"), "a reference to a folder outside the project"


def test_the_link_check_catches_what_it_should(tmp_path):
    page = REPO / "docs" / "x.md"
    text = "[a](../../elsewhere.md) [b](missing.md) [c](file:///etc/passwd) [d](entrypoint.md#no-such) `[e](no.md)`"
    targets = LINK.findall(prose(text))
    assert targets == ["../../elsewhere.md", "missing.md", "file:///etc/passwd", "entrypoint.md#no-such"]
    assert not (page.parent / "../../elsewhere.md").resolve().is_relative_to(REPO)
    assert "no-such" not in anchors(DOCS / "entrypoint.md") and "exit-codes" in anchors(DOCS / "entrypoint.md")


def test_the_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"](docs/{p.name})" not in readme]
    assert not missing, f"README.md does not link {missing}"


def table_keys(page: Path, header: str) -> dict[str, str]:
    """First column (a `code` name) -> second column of the Markdown table whose header row starts with ``header``."""
    text = page.read_text(encoding="utf-8")
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([^`]+)`(?:, `([^`]+)`)? \| ((?:[^|\\]|\\.)+) \|", table, re.M)
    found = {}
    for first, second, column in rows:
        for name in (first, second):
            if name:
                found[name] = column.strip()
    return found


def test_entrypoint_lists_every_spec_key_and_which_are_required():
    from dldoctor.loading.spec import ALL_KEYS, REQUIRED

    rows = table_keys(DOCS / "entrypoint.md", "| key | required |")
    assert list(rows) == list(ALL_KEYS), "docs/entrypoint.md's table must list the Spec's keys, in order"
    assert [k for k, required in rows.items() if required == "yes"] == list(REQUIRED)


def test_python_api_lists_every_run_option():
    from dldoctor.core.runner import RunOptions

    rows = table_keys(DOCS / "python-api.md", "| option | default |")
    assert set(rows) == {f.name for f in dataclasses.fields(RunOptions)}


def test_python_api_lists_every_finding_field():
    from dldoctor.core.finding import Finding

    rows = table_keys(DOCS / "python-api.md", "| field | type |")
    assert set(rows) == {f.name for f in dataclasses.fields(Finding)}


@pytest.mark.slow
def test_the_python_api_example_runs(monkeypatch, capsys):
    """The first example of docs/python-api.md, run as written from the repository root."""
    (example,) = code_blocks(DOCS / "python-api.md", "python")[:1]
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(compile(example, "docs/python-api.md", "exec"), namespace)
    assert namespace["diagnosis"].status == "healthy"
    assert int(namespace["code"]) == 0
    assert [c.name for c in namespace["diagnosis"].checks if c.status.value == "passed"] == [
        "forward-pass", "numerics", "gradient-flow"]
    assert capsys.readouterr().out.splitlines()[0] == "healthy"
    assert schema_errors(namespace["report"]) == []


def test_the_json_report_example_is_valid():
    (example,) = code_blocks(DOCS / "json-report.md", "json")
    assert schema_errors(json.loads(example)) == []


def test_the_plugin_guide_example_is_a_working_check():
    """The check in docs/plugins.md registers (its class attributes are valid) and judges."""
    import torch
    from torch import nn

    from dldoctor.core.catalogue import CATALOGUE

    (example,) = code_blocks(DOCS / "plugins.md", "python")
    namespace: dict = {}
    exec(compile(example, "docs/plugins.md", "exec"), namespace)
    check_class = namespace["LogitScale"]
    assert check_class.summary() == "Reports a model whose initial logits are far too large."
    assert set(check_class.emits) == {"bad-initialization", "logits-too-large"}
    assert "logits-too-large" not in CATALOGUE  # its own ID stays the plugin's

    class Ctx:  # the few CheckContext members the example uses
        def __init__(self, scale: float):
            self.scale, self.measured_keys = scale, []

        config = type("Config", (), {"get": staticmethod(lambda key: {"logit_scale.max_std": 10.0}[key])})()

        def fresh_model(self):
            torch.manual_seed(0)
            model = nn.Linear(4, 3)
            with torch.no_grad():
                model.weight.mul_(self.scale)
            return model

        def first_batch(self):
            return torch.randn(64, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(64, dtype=torch.long)

        def forward_fn(self, model, batch):
            return model(batch[0]), batch[1]

        def measure(self, key, fn):
            self.measured_keys.append(key)
            return fn()

    assert check_class().run(Ctx(1.0)) == []
    (finding,) = check_class().run(Ctx(500.0))
    assert finding.id == "logits-too-large" and finding.severity.value == "warning"
    assert finding.fixes[0] == "Scale the last layer's initial weights down."
    assert finding.metrics["logit_std"] > 10.0
