"""``dldoctor checks``: every registered check, its stage, IDs and summary.

Exits 2 when an installed plugin fails to load (after listing what did load), naming
the entry point and why, so that a broken plugin is not mistaken for an installed one.
"""

from __future__ import annotations

import typer

from dldoctor.cli.common import err_console
from dldoctor.core.errors import ExitCode


def checks(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show each check's full description."),
) -> None:
    """List every registered check (built-in and plugins) with its stage and diagnosis IDs."""
    import inspect

    from rich.console import Console
    from rich.table import Table

    from dldoctor.core.registry import discover

    registered, failures = discover()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("check", "stage", "emits", "source", "summary"):
        table.add_column(col, overflow="fold")
    for r in registered:
        summary = (inspect.getdoc(r.check) or "") if verbose else r.check.summary()
        table.add_row(r.check.name, r.check.stage.label, ", ".join(r.check.emits), r.source, summary)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # piped or captured: do not fold names at 80 columns
    console.print(table)
    for failure in failures:
        err_console().print(failure.message(), markup=False, soft_wrap=True)
    if failures:
        err_console().print("Fix or uninstall the plugin, or set DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD=1 to run "
                            "without third-party checks.", markup=False, soft_wrap=True)
        raise typer.Exit(int(ExitCode.USAGE))
