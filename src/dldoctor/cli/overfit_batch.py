"""``dldoctor overfit-batch``: stage 2 (after the stage-1 checks it depends on)."""

from __future__ import annotations

from pathlib import Path

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.stage import Stage


@c.diagnosing_command
def overfit_batch(
    common: c.CommonOptions,
    # Ranges come from the config schema (overfit.steps, ...), checked below with the option's name.
    steps: int | None = typer.Option(None, "--steps", help="Steps of the single-batch run (default 200)."),
    batch_size: int | None = typer.Option(None, "--batch-size",
                                             help="Samples in the batch (default: the loader's batch)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate to use instead of the spec's."),
    plot: Path | None = typer.Option(None, "--plot", dir_okay=False,
                                        help="Draw every run's loss curve to this PNG/SVG file (needs matplotlib)."),
) -> None:
    """Overfit one batch, read the curve, and confirm the cause by experiment."""
    from dldoctor.core.config import option_overrides
    from dldoctor.core.errors import ConfigError

    try:
        overrides = option_overrides(("--steps", "overfit.steps", steps),
                                     ("--batch-size", "overfit.batch_size", batch_size),
                                     ("--lr", "overfit.lr", lr))
    except ConfigError as exc:
        c.fail(exc)
    diagnose_and_report(common, command="overfit-batch", stages=(Stage.RUN, Stage.OVERFIT), overrides=overrides,
                        plot=plot)
