"""The ``dldoctor`` command: a typer app whose commands live one per module."""

from __future__ import annotations

import typer

from dldoctor import __version__
from dldoctor.cli.bias_variance import bias_variance
from dldoctor.cli.checks_cmd import checks
from dldoctor.cli.data import data
from dldoctor.cli.diff_cmd import diff
from dldoctor.cli.evaluate import evaluate
from dldoctor.cli.explain import explain
from dldoctor.cli.overfit_batch import overfit_batch
from dldoctor.cli.probe import probe
from dldoctor.cli.run import run
from dldoctor.cli.tune import tune

app = typer.Typer(
    name="dldoctor",
    help="A doctor for PyTorch training runs: runs the troubleshooting checklist on your model and data, "
         "and ranks the most likely root causes with the evidence and the fixes to try.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dldoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 dldoctor could not run."""


app.command("run")(run)
app.command("probe")(probe)
app.command("overfit-batch")(overfit_batch)
app.command("evaluate")(evaluate)
app.command("tune")(tune)
app.command("data")(data)
app.command("bias-variance")(bias_variance)
app.command("checks")(checks)
app.command("explain")(explain)
app.command("diff")(diff)


def main() -> None:
    """Run the CLI; exit with its code.

    A run may leave daemon threads behind (a user's loader stuck in a read, dldoctor's
    reader waiting on it, torch's own threads). Tearing the interpreter down around them
    can abort the process after the report is written ("terminate called without an
    active exception", exit -6, seen on CI). So when other threads are alive the exit
    code goes to the OS directly, once stdout and stderr are flushed.
    """
    import os
    import sys
    import threading

    try:
        app()
    except SystemExit as exc:
        if threading.active_count() <= 1:
            raise
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
