"""``dldoctor run``: every stage, ranked diagnosis."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.severity import FailOn
from dldoctor.render import OutputFormat


def run(
    target: Optional[str] = typer.Argument(None, help="The training file that defines dldoctor_spec()."),
    spec: Optional[str] = c.SPEC_OPTION,
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
    """Run every check on TARGET and print the ranked diagnosis."""
    diagnose_and_report(command="run", target=target, spec=spec, fmt=fmt, output=output, fail_on=fail_on,
                        profile=profile, select=select, ignore=ignore, seed=seed, device=device, config=config,
                        verbose=verbose, allow_incomplete=allow_incomplete)
