"""``dldoctor overfit-batch``: stage 2 (after the stage-1 checks it depends on)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat


def overfit_batch(
    target: Optional[str] = typer.Argument(None, help="The training file that defines dldoctor_spec()."),
    spec: Optional[str] = c.SPEC_OPTION,
    # Ranges come from the config schema (overfit.steps, ...), checked below with the option's name.
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps of the single-batch run (default 200)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help="Samples in the batch (default: the loader's batch)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate to use instead of the spec's."),
    plot: Optional[Path] = typer.Option(None, "--plot", dir_okay=False,
                                        help="Draw every run's loss curve to this PNG/SVG file (needs matplotlib)."),
    fmt: OutputFormat = c.FORMAT_OPTION,
    output: Optional[Path] = c.OUTPUT_OPTION,
    fail_on: FailOn = c.FAIL_ON_OPTION,
    profile: str = c.PROFILE_OPTION,
    select: Optional[list[str]] = c.SELECT_OPTION,
    ignore: Optional[list[str]] = c.IGNORE_OPTION,
    seed: Optional[int] = c.SEED_OPTION,
    device: str = c.DEVICE_OPTION,
    config: Optional[Path] = c.CONFIG_OPTION,
    verbose: bool = c.VERBOSE_OPTION,
    allow_incomplete: bool = c.ALLOW_INCOMPLETE_OPTION,
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
    diagnose_and_report(command="overfit-batch", target=target, spec=spec, fmt=fmt, output=output,
                        fail_on=fail_on, profile=profile, select=select, ignore=ignore, seed=seed, device=device,
                        config=config, verbose=verbose, stages=(Stage.RUN, Stage.OVERFIT), overrides=overrides,
                        plot=plot, allow_incomplete=allow_incomplete)
