"""``dldoctor checks``: every registered check, its stage, IDs and summary."""

from __future__ import annotations

import typer

from dldoctor.cli.common import err_console


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
        err_console().print(f"plugin {failure.name!r} failed to load: {failure.error}", markup=False)
