"""GitHub Actions output: workflow commands that annotate the run (and the lines of code).

Each finding at warning or above becomes one ``::error`` or ``::warning`` line,
``file=`` and ``line=`` when dldoctor knows where in the user's code the problem is;
GitHub shows them on the job and beside those lines in the pull request. When
``GITHUB_STEP_SUMMARY`` names a file (as it does inside a GitHub Actions step), the
Markdown report is appended to it, so the job's summary page shows the whole diagnosis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dldoctor.core.diagnosis import Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning"}
#: Evidence lines carried in one annotation's message (the rest are in the summary).
_MAX_EVIDENCE = 4


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF are written as ``%25``, ``%0D``, ``%0A``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``file=``, ``title=``): as a message, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def display_file(path: str) -> str:
    """The path relative to the working directory (the checkout, in a workflow) when under it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return path


def annotation(finding: Finding) -> str | None:
    """One workflow command for ``finding``, or None below warning."""
    command = _COMMAND.get(finding.severity)
    if command is None:
        return None
    properties = []
    if finding.file:
        properties.append(f"file={escape_property(display_file(finding.file))}")
        if finding.line > 0:
            properties.append(f"line={finding.line}")
    properties.append(f"title={escape_property(f'dldoctor {finding.id}')}")
    lines = [finding.title]
    if finding.explained_by:
        lines.append(f"(likely a consequence of {finding.explained_by})")
    if finding.location and not finding.file:
        lines.append(f"where: {finding.location}")
    lines += list(finding.evidence[:_MAX_EVIDENCE])
    if finding.fixes:
        lines.append(f"Try first: {finding.fixes[0]}")
    lines.append(f"Details: dldoctor explain {finding.id}")
    return f"::{command} {','.join(properties)}::{escape_data(chr(10).join(lines))}"


def append_step_summary(diagnosis: Diagnosis) -> None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    from dldoctor.render.markdown_report import render as render_markdown

    try:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(render_markdown(diagnosis) + "\n")
    except OSError as exc:
        sys.stderr.write(f"dldoctor: cannot append to GITHUB_STEP_SUMMARY ({summary}): {exc.strerror or exc}\n")


def render(diagnosis: Diagnosis) -> str:
    """The workflow commands, one line per finding at warning or above (most likely cause first)."""
    append_step_summary(diagnosis)
    lines = [line for line in map(annotation, diagnosis.diagnoses) if line is not None]
    return "\n".join(lines) + ("\n" if lines else "")
