"""``dldoctor probe``: stage 1 alone ("get it running"), in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat


def probe(
    target: Optional[str] = typer.Argument(None, help="The training file that defines dldoctor_spec()."),
    spec: Optional[str] = c.SPEC_OPTION,
    memory_budget: Optional[str] = typer.Option(
        None, "--memory-budget",
        help="Memory a training step may use, e.g. 8GiB or 500MB (default: the CUDA device's free memory, "
             "else available RAM)."),
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
    """Run the first stage only: crashes, silent wiring bugs, initialisation, memory."""
    from dldoctor.core.config import option_overrides
    from dldoctor.core.errors import ConfigError

    try:
        overrides = option_overrides(("--memory-budget", "memory_model.budget", memory_budget))
    except ConfigError as exc:
        c.fail(exc)
    diagnose_and_report(command="probe", target=target, spec=spec, fmt=fmt, output=output, fail_on=fail_on,
                        profile=profile, select=select, ignore=ignore, seed=seed, device=device, config=config,
                        verbose=verbose, stages=(Stage.RUN,), overrides=overrides, allow_incomplete=allow_incomplete)
