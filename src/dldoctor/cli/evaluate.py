"""``dldoctor evaluate``: stages 1-4 (run, overfit, compare, evaluate) with the bias-variance report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.errors import UsageError
from dldoctor.core.stage import Stage

BUDGET_UNITS = {"e": "training.epochs", "ep": "training.epochs", "epoch": "training.epochs",
                "epochs": "training.epochs", "st": "training.max_steps", "step": "training.max_steps",
                "steps": "training.max_steps", "s": "training.max_seconds", "sec": "training.max_seconds",
                "seconds": "training.max_seconds"}


def parse_budget(text: str | None) -> tuple[tuple[str, object], ...]:
    """``5ep,30s`` / ``400steps`` -> config overrides of the short run's budget."""
    if not text:
        return ()
    import re

    out = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]+)\s*", part.lower())
        if not match or match.group(2) not in BUDGET_UNITS:
            raise UsageError(f"--budget {text!r}: cannot read {part.strip()!r}",
                             hint="e.g. --budget 5ep,30s  (units: ep = epochs, steps, s = seconds)")
        key = BUDGET_UNITS[match.group(2)]
        value = float(match.group(1))
        out.append((key, value if key.endswith("seconds") else int(value)))
    return tuple(out)


def evaluate(
    target: Optional[str] = typer.Argument(None, help="The training file that defines dldoctor_spec()."),
    spec: Optional[str] = c.SPEC_OPTION,
    budget: Optional[str] = typer.Option(None, "--budget", help="Short-run budget, e.g. 5ep,30s or 400steps."),
    fmt: c.OutputFormat = c.FORMAT_OPTION,
    output: Optional[Path] = c.OUTPUT_OPTION,
    fail_on: c.FailOn = c.FAIL_ON_OPTION,
    profile: str = c.PROFILE_OPTION,
    select: Optional[list[str]] = c.SELECT_OPTION,
    ignore: Optional[list[str]] = c.IGNORE_OPTION,
    seed: Optional[int] = c.SEED_OPTION,
    device: str = c.DEVICE_OPTION,
    config: Optional[Path] = c.CONFIG_OPTION,
    verbose: bool = c.VERBOSE_OPTION,
) -> None:
    """Train briefly, compare to baselines and known results, and decompose the error."""
    try:
        overrides = parse_budget(budget)
    except UsageError as exc:
        c.fail(exc)
    diagnose_and_report(command="evaluate", target=target, spec=spec, fmt=fmt, output=output, fail_on=fail_on,
                        profile=profile, select=select, ignore=ignore, seed=seed, device=device, config=config,
                        verbose=verbose, stages=(Stage.RUN, Stage.OVERFIT, Stage.COMPARE, Stage.EVALUATE),
                        overrides=overrides)
