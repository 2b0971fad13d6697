"""``dldoctor explain ID``: the catalogue entry of a diagnosis ID (built-in or a plugin's)."""

from __future__ import annotations

import typer

from dldoctor.cli.common import fail
from dldoctor.core.errors import UsageError


def explain(diagnosis_id: str = typer.Argument(..., metavar="ID", help="A diagnosis ID, e.g. lr-too-high.")) -> None:
    """Explain a diagnosis ID: what it means, the evidence, the fixes in order."""
    from rich.console import Console

    from dldoctor.core import catalogue

    key = diagnosis_id.strip().lower()
    if not catalogue.is_builtin(key):
        from dldoctor.core.registry import load_plugins

        load_plugins()  # a plugin's IDs are known once it is loaded
    if not catalogue.known(key):
        close = catalogue.closest(key)
        fail(UsageError(f"unknown diagnosis ID {diagnosis_id!r}",
                        hint=("Did you mean: " + ", ".join(close) + "?") if close
                        else "dldoctor checks lists the IDs each check emits."))
    entry = catalogue.get(key)
    console = Console(highlight=False)
    family = getattr(entry.family, "value", entry.family)
    console.print(f"[bold]{key}[/]: {entry.title}  [dim]({family})[/]", markup=True)
    console.print()
    console.print(entry.explanation, markup=False)
    console.print()
    if entry.evidence:
        console.print("[bold]Evidence dldoctor looks for[/]")
        for e in entry.evidence:
            console.print(f"  • {e}", markup=False)
    console.print("[bold]Fixes, in order[/]")
    for i, fix in enumerate(entry.fixes, start=1):
        console.print(f"  {i}. {fix}", markup=False)
    if entry.explains:
        console.print(f"[bold]Often explains[/] {', '.join(str(i) for i in entry.explains)}")
    owners = catalogue.owners(key)
    if owners:
        console.print(f"[dim]Reported by {', '.join(owners)}[/]")
    console.print(f"[dim]Silence it: --ignore {key}[/]")
