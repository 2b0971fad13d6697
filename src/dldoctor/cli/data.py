"""``dldoctor data``: the data checks alone (imbalance, size, label noise, leakage, shift)."""

from __future__ import annotations

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.stage import Stage


@c.diagnosing_command
def data(
    common: c.CommonOptions,
    max_samples: int | None = typer.Option(
        None, "--max-samples",  # at least 10: the range of data.max_samples, checked below
        help="Rows read per split, at least 10 (a uniform sample beyond it; default: data.max_samples, 20000)."),
) -> None:
    """Check the data alone: class imbalance, too little data, label noise, train-val leakage, distribution shift."""
    from dldoctor.core.config import option_overrides
    from dldoctor.core.errors import ConfigError

    try:
        overrides = option_overrides(("--max-samples", "data.max_samples", max_samples))
    except ConfigError as exc:
        c.fail(exc)
    diagnose_and_report(common, command="data", stages=(Stage.DATA,), overrides=overrides)
