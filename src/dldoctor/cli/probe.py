"""``dldoctor probe``: stage 1 alone ("get it running"), in seconds."""

from __future__ import annotations

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.stage import Stage


@c.diagnosing_command
def probe(
    common: c.CommonOptions,
    memory_budget: str | None = typer.Option(
        None, "--memory-budget",
        help="Memory a training step may use, e.g. 8GiB or 500MB (default: the CUDA device's free memory, "
             "else available RAM)."),
) -> None:
    """Run the first stage only: crashes, silent wiring bugs, initialisation, memory."""
    from dldoctor.core.config import option_overrides
    from dldoctor.core.errors import ConfigError

    try:
        overrides = option_overrides(("--memory-budget", "memory_model.budget", memory_budget))
    except ConfigError as exc:
        c.fail(exc)
    diagnose_and_report(common, command="probe", stages=(Stage.RUN,), overrides=overrides)
