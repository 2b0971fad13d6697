"""Renderers: one per output format, all reading the same :class:`Diagnosis`.

Importing this package does not import rich or torch; each renderer imports what
it needs when it runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from dldoctor.core.diagnosis import Diagnosis


class OutputFormat(str, enum.Enum):
    """The ``--format`` choices."""

    RICH = "rich"
    JSON = "json"
    MARKDOWN = "markdown"
    JUNIT = "junit"
    GITHUB = "github"
    SARIF = "sarif"
    HTML = "html"


def _rich(diagnosis: Diagnosis, width: int | None = None) -> str:
    from dldoctor.render.rich_report import render

    return render(diagnosis, width=width)


def _json(diagnosis: Diagnosis, width: int | None = None) -> str:
    from dldoctor.render.json_report import render

    return render(diagnosis)


def _markdown(diagnosis: Diagnosis, width: int | None = None) -> str:
    from dldoctor.render.markdown_report import render

    return render(diagnosis)


def _module(name: str) -> Callable[..., str]:
    """A renderer whose module ``dldoctor.render.<name>`` exposes ``render(diagnosis) -> str``,
    imported when it first runs."""

    def renderer(diagnosis: Diagnosis, width: int | None = None) -> str:
        import importlib

        return str(importlib.import_module(f"dldoctor.render.{name}").render(diagnosis))

    return renderer


RENDERERS: dict[OutputFormat, Callable[..., str]] = {
    OutputFormat.RICH: _rich,
    OutputFormat.JSON: _json,
    OutputFormat.MARKDOWN: _markdown,
    OutputFormat.JUNIT: _module("junit_report"),
    OutputFormat.GITHUB: _module("github_report"),
    OutputFormat.SARIF: _module("sarif_report"),
    OutputFormat.HTML: _module("html_report"),
}


def render(diagnosis: Diagnosis, fmt: OutputFormat, width: int | None = None) -> str:
    """Render ``diagnosis`` in ``fmt`` as text."""
    return RENDERERS[OutputFormat(fmt)](diagnosis, width=width)
