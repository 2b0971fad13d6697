"""``dldoctor diff OLD.json NEW.json``: what got worse between two JSON reports."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from dldoctor.cli.common import exit_with, fail, write_output
from dldoctor.core.errors import DldoctorError, ExitCode


class DiffFormat(str, enum.Enum):
    """The ``--format`` choices of ``dldoctor diff``."""

    RICH = "rich"
    MARKDOWN = "markdown"
    JSON = "json"


def diff(
    old: Path = typer.Argument(..., metavar="OLD.json", help="The earlier report (dldoctor run --format json)."),
    new: Path = typer.Argument(..., metavar="NEW.json", help="The later report."),
    fmt: DiffFormat = typer.Option(DiffFormat.RICH, "--format", "-f", case_sensitive=False,
                                   help="rich (terminal), markdown (a pull-request comment) or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the comparison to this file."),
) -> None:
    """Compare two JSON reports: new, fixed and changed findings, and measurements that moved beyond their noise.

    Findings match by (ID, check, location): new, fixed, severity changed.

    A measurement moved when it changed by more than 2 combined standard errors.

    Without noise: more than 10% of the old value. Timings must also change by 2x.

    Exit 1 when something got worse (a new warning or error, a severity up, a measurement worse beyond noise).

    Exit 0 when nothing did, 2 when a report cannot be read.
    """
    from dldoctor.core.report_diff import diff_reports, load_report
    from dldoctor.render import diff_report

    try:
        result = diff_reports(load_report(old), load_report(new))
    except DldoctorError as exc:
        fail(exc)
    if fmt is DiffFormat.JSON:
        text = diff_report.render_json(result)
    elif fmt is DiffFormat.MARKDOWN:
        text = diff_report.render_markdown(result)
    else:
        text = diff_report.render_rich(result)
    write_output(text, output)
    exit_with(ExitCode.FINDINGS if result.worse else ExitCode.OK)
