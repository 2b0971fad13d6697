"""``dldoctor evaluate``: stages 1-4 (run, overfit, compare, evaluate) with the bias-variance report."""

from __future__ import annotations

import re

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report
from dldoctor.core.errors import DldoctorError, UsageError
from dldoctor.core.stage import Stage

BUDGET_UNITS = {"e": "training.epochs", "ep": "training.epochs", "epoch": "training.epochs",
                "epochs": "training.epochs", "st": "training.max_steps", "step": "training.max_steps",
                "steps": "training.max_steps", "s": "training.max_seconds", "sec": "training.max_seconds",
                "seconds": "training.max_seconds"}


#: A number (a sign included, so that "-3ep" is refused for its value rather than
#: unread) and a unit.
_BUDGET_PART = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([a-z]+)\s*")


def budget_overrides(text: str | None) -> tuple[tuple[str, object], ...]:
    """``5ep,30s`` / ``400steps`` -> config overrides of the short run's budget.

    Each part is held to its key's range in the config schema (at least one epoch or
    step, more than 0 seconds), so ``--budget 0ep`` fails here, naming the option.

    Args:
        text: the option's value, or None.

    Returns:
        ``(dotted key, value)`` pairs: ``training.epochs``, ``training.max_steps`` (whole
        numbers), ``training.max_seconds``.

    Raises:
        UsageError: a part that is not a number and a unit, a fractional epoch or
            step count, or a unit given twice.
        ConfigError: a value outside its key's range (zero or negative epochs, steps
            or seconds).
    """
    if not text:
        return ()
    from dldoctor.core.config import option_overrides

    hint = "e.g. --budget 5ep,30s  (units: ep = epochs, steps, s = seconds; each a positive number, once)"
    parts: dict[str, tuple[str, object]] = {}
    for part in text.split(","):
        match = _BUDGET_PART.fullmatch(part.lower())
        if not match or match.group(2) not in BUDGET_UNITS:
            raise UsageError(f"--budget {text!r}: cannot read {part.strip()!r}", hint=hint)
        key = BUDGET_UNITS[match.group(2)]
        if key in parts:
            raise UsageError(f"--budget {text!r}: {key.split('.')[1]} given twice", hint=hint)
        value = float(match.group(1))
        if not key.endswith("seconds"):
            if not value.is_integer():
                raise UsageError(f"--budget {text!r}: {part.strip()!r} must be a whole number of "
                                 f"{key.split('.')[1].replace('max_', '')}", hint=hint)
            value = int(value)
        parts[key] = (f"--budget {part.strip()!r}", value)
    return option_overrides(*((option, key, value) for key, (option, value) in parts.items()))


@c.diagnosing_command
def evaluate(
    common: c.CommonOptions,
    budget: str | None = typer.Option(None, "--budget", help="Short-run budget, e.g. 5ep or 400steps; seconds (30s) "
                                                           "are a safety limit that ends the run incomplete."),
) -> None:
    """Train briefly, compare to baselines and known results, and decompose the error."""
    try:
        overrides = budget_overrides(budget)
    except DldoctorError as exc:
        c.fail(exc)
    diagnose_and_report(common, command="evaluate",
                        stages=(Stage.RUN, Stage.OVERFIT, Stage.COMPARE, Stage.EVALUATE), overrides=overrides)
