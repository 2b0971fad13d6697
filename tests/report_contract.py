"""The report contract every diagnosis must meet, whatever produced it.

``assert_report_contract(diagnosis)`` is called on every zoo case (tests/test_examples.py),
so each of them checks, besides its expected finding:

- the JSON report (the JSON renderer's text, parsed) validates against the shipped schema
  (src/dldoctor/schema/report.schema.json);
- the report round-trips: ``Diagnosis.from_dict`` of it gives back the same report;
- every output format renders it without raising (the HTML page draws its plots for a fixed
  tenth of the cases: :func:`plots_sampled`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

from dldoctor.core.diagnosis import Diagnosis
from dldoctor.render import OutputFormat, render

#: The renderer module behind each format that has one of its own (see render/__init__.py).
RENDER_MODULES = {
    OutputFormat.JUNIT: "dldoctor.render.junit_report",
    OutputFormat.GITHUB: "dldoctor.render.github_report",
    OutputFormat.SARIF: "dldoctor.render.sarif_report",
    OutputFormat.HTML: "dldoctor.render.html_report",
}


@functools.lru_cache(maxsize=1)
def validator() -> Any:
    """A draft 2020-12 validator of the shipped schema (built once: building it costs more than using it)."""
    from jsonschema import Draft202012Validator

    from dldoctor.schema import report_schema

    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(report: dict[str, Any]) -> list[str]:
    """Every way ``report`` breaks the schema, one line each (empty when it is valid)."""
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
            for error in sorted(validator().iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]


def available_formats() -> list[OutputFormat]:
    """The formats whose renderer exists in this tree.

    The junit, github, sarif and html renderers are being added alongside this test; a format
    whose module is not there yet is left out here (a renderer that exists but fails to
    import still fails the test). Once all of them exist this returns every format.
    """
    return [fmt for fmt in OutputFormat
            if fmt not in RENDER_MODULES or importlib.util.find_spec(RENDER_MODULES[fmt]) is not None]


def plots_sampled(target: str) -> bool:
    """Whether this case's HTML report is drawn with its plots: one case in ten, fixed by its name.

    Drawing the figures (matplotlib) costs about a second a case, a few minutes over the whole
    zoo; the rest of the page costs milliseconds. So every case renders its page with every
    finding, and a fixed tenth of them also draw their recorded series.
    """
    return zlib.crc32(Path(target).name.encode()) % 10 == 0


def without_plots(diagnosis: Diagnosis) -> Diagnosis:
    """``diagnosis`` without its plot series, unless :func:`plots_sampled` picks it."""
    if plots_sampled(diagnosis.target) or not getattr(diagnosis, "series", None):
        return diagnosis
    return dataclasses.replace(diagnosis, series={})


def assert_report_contract(diagnosis: Diagnosis) -> None:
    report = json.loads(render(diagnosis, OutputFormat.JSON))
    errors = schema_errors(report)
    assert not errors, "the JSON report breaks report.schema.json:\n" + "\n".join(errors)
    again = json.loads(json.dumps(Diagnosis.from_dict(report).to_dict()))
    assert again == report, "Diagnosis.from_dict(report).to_dict() differs from the report"
    # The github renderer appends its summary to $GITHUB_STEP_SUMMARY when that is set (as in a GitHub
    # Actions step): a test suite run there must not fill the job summary with every zoo case.
    with mock.patch.dict(os.environ):
        os.environ.pop("GITHUB_STEP_SUMMARY", None)
        texts = {fmt: render(without_plots(diagnosis) if fmt is OutputFormat.HTML else diagnosis, fmt, width=100)
                 for fmt in available_formats()}
    for fmt, text in texts.items():
        assert isinstance(text, str), f"{fmt.value} rendered {type(text).__name__}, not text"
        # github is workflow-command annotations, one per finding worth one: a run with none has none.
        assert text.strip() or fmt is OutputFormat.GITHUB, f"{fmt.value} rendered nothing"
