"""``dldoctor explain ID``: the catalogue entry of a diagnosis ID."""

from __future__ import annotations

import typer

from dldoctor.cli.common import fail
from dldoctor.core.errors import UsageError


def explain(diagnosis_id: str = typer.Argument(..., metavar="ID", help="A diagnosis ID, e.g. lr-too-high.")) -> None:
    """Explain a diagnosis ID: what it means, the evidence, the fixes in order."""
    from rich.console import Console

    from dldoctor.core import catalogue

    key = diagnosis_id.strip().lower()
    if key not in catalogue.CATALOGUE:
        close = catalogue.closest(key)
        fail(UsageError(f"unknown diagnosis ID {diagnosis_id!r}",
                        hint=("Did you mean: " + ", ".join(close) + "?") if close
                        else "dldoctor checks lists the IDs each check emits."))
    entry = catalogue.get(key)
    console = Console(highlight=False)
    console.print(f"[bold]{entry.id.value}[/]: {entry.title}  [dim]({entry.family.value})[/]")
    console.print()
    console.print(entry.explanation, markup=False)
    console.print()
    console.print("[bold]Evidence dldoctor looks for[/]")
    for e in entry.evidence:
        console.print(f"  • {e}", markup=False)
    console.print("[bold]Fixes, in order[/]")
    for i, fix in enumerate(entry.fixes, start=1):
        console.print(f"  {i}. {fix}", markup=False)
    if entry.explains:
        console.print(f"[bold]Often explains[/] {', '.join(i.value for i in entry.explains)}")
    console.print(f"[dim]Silence it: --ignore {entry.id.value}[/]")
