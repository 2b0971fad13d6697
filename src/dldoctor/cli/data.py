"""``dldoctor data``: the data checks alone (imbalance, size, label noise, leakage, shift)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat


def data(
    target: Optional[str] = typer.Argument(None, help="The training file that defines dldoctor_spec()."),
    spec: Optional[str] = c.SPEC_OPTION,
    max_samples: Optional[int] = typer.Option(
        None, "--max-samples",  # at least 10: the range of data.max_samples, checked below
        help="Rows read per split, at least 10 (a uniform sample beyond it; default: data.max_samples, 20000)."),
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
    """Check the data alone: class imbalance, too little data, label noise, train-val leakage, distribution shift."""
    from dldoctor.core.config import option_overrides
    from dldoctor.core.errors import ConfigError

    try:
        overrides = option_overrides(("--max-samples", "data.max_samples", max_samples))
    except ConfigError as exc:
        c.fail(exc)
    diagnose_and_report(command="data", target=target, spec=spec, fmt=fmt, output=output, fail_on=fail_on,
                        profile=profile, select=select, ignore=ignore, seed=seed, device=device, config=config,
                        verbose=verbose, stages=(Stage.DATA,), overrides=overrides, allow_incomplete=allow_incomplete)
