"""What the commands share: options, the live view, output, errors and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, NoReturn, Optional

import typer

from dldoctor.core.errors import DldoctorError, ExitCode
from dldoctor.core.severity import FailOn
from dldoctor.render import OutputFormat

__all__ = ["FailOn", "OutputFormat"]

FORMAT_OPTION = typer.Option(OutputFormat.RICH, "--format", "-f", help="Output format: rich, json or markdown.")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Write the report to this file instead of stdout.",
                             dir_okay=False)
FAIL_ON_OPTION = typer.Option(FailOn.ERROR, "--fail-on",
                              help="Exit 1 when a finding at or above this severity is found (error, warning, never).")
PROFILE_OPTION = typer.Option("standard", "--profile", "-p",
                              help="Cost tier: quick, standard or thorough (how many steps and experiments).")
SELECT_OPTION = typer.Option(None, "--select", help="Only these diagnosis IDs or check names (repeat or comma-separate).")
IGNORE_OPTION = typer.Option(None, "--ignore", help="Skip these diagnosis IDs or check names (repeat or comma-separate).")
SEED_OPTION = typer.Option(None, "--seed", help="Seed for every experiment (default: run.seed from config, 0).")
DEVICE_OPTION = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
CONFIG_OPTION = typer.Option(None, "--config", help="A YAML file overriding thresholds and budgets.",
                             exists=False, dir_okay=False)
SPEC_OPTION = typer.Option(None, "--spec", help="The spec function: NAME, FILE.py:NAME or package.module:NAME.")
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="Show each check as it finishes.")
ALLOW_INCOMPLETE_OPTION = typer.Option(
    False, "--allow-incomplete",
    help="Exit 0 even when a check could not finish (status incomplete); by default that exits 1.")

#: Exit status after Ctrl-C, as a shell reports a process ended by SIGINT (128 + 2).
INTERRUPTED_EXIT = 130


def split_names(values: Optional[Iterable[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or ():
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(error: DldoctorError) -> NoReturn:
    """Print a user-facing error (never a dldoctor traceback) and exit with its code."""
    console = err_console()
    console.print(f"[bold red]dldoctor: error:[/] {error.message}", markup=True, soft_wrap=True)
    if error.user_traceback:
        console.print(error.user_traceback, markup=False, style="dim", soft_wrap=True)
    if error.hint:
        console.print(error.hint, markup=False, soft_wrap=True)
    raise typer.Exit(int(error.exit_code))


def write_output(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        fail(DldoctorError(f"cannot write {output}: {exc.strerror or exc}"))
    err_console().print(f"report written to {output}", style="dim")


class LiveView:
    """Progress per stage and check on stderr while the pipeline works."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.console = err_console()
        self.status = None

    def __enter__(self) -> "LiveView":
        if self.console.is_terminal:
            self.status = self.console.status("starting", spinner="dots")
            self.status.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def check_started(self, check) -> None:
        if self.status is not None:
            self.status.update(f"[bold]{check.stage.label}[/] · {check.name}: {check.summary()[:70]}")

    def progress(self, label: str, step: int, loss: float) -> None:
        if self.status is not None:
            self._losses = (getattr(self, "_losses", []) + [loss])[-24:] if label == getattr(self, "_label", None) \
                else [loss]
            self._label = label
            from dldoctor.checks.overfit.experiments import sparkline

            self.status.update(f"[bold]overfit[/] · {label} · step {step} · loss {loss:.4g} "
                               f"{sparkline(self._losses)}")

    def reading(self, label: str, done: int, total: int) -> None:
        if self.status is not None:
            width = 24
            filled = int(width * done / total) if total > 0 else 0
            bar = "━" * filled + "[dim]" + "━" * (width - filled) + "[/dim]"
            self.status.update(f"[bold]data[/] · {label} {bar} {done}/{total} samples")

    def check_finished(self, result) -> None:
        if self.verbose:
            self.console.print(f"  {result.stage:<9} {result.name:<24} {result.status.value:<8} "
                               f"{result.duration_s:6.2f}s {result.reason}", markup=False, highlight=False)


def exit_with(code: ExitCode) -> NoReturn:
    raise typer.Exit(int(code))
