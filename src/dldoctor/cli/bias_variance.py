"""``dldoctor bias-variance``: decompose the error from numbers or a metrics log (no model needed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from dldoctor.cli import common as c
from dldoctor.core.errors import DldoctorError, UsageError


def _fraction(name: str, value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if not 0.0 <= value <= 100.0:
        raise UsageError(f"--{name} must be an error between 0 and 1 (or a percentage), got {value:g}")
    return value / 100.0 if value > 1.0 else value


def bias_variance(
    train: Optional[float] = typer.Option(None, "--train", help="Training error (fraction, e.g. 0.08)."),
    val: Optional[float] = typer.Option(None, "--val", help="Validation error."),
    test: Optional[float] = typer.Option(None, "--test", help="Test error."),
    train_val: Optional[float] = typer.Option(None, "--train-val",
                                              help="Error on a split held out from the training distribution."),
    irreducible: float = typer.Option(0.0, "--irreducible", help="Best achievable (e.g. human-level) error."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", dir_okay=False,
                                           help="A CSV/JSON per-epoch log (train_loss, val_acc, epoch, ...)."),
    fmt: c.OutputFormat = c.FORMAT_OPTION,
    output: Optional[Path] = c.OUTPUT_OPTION,
    fail_on: c.FailOn = c.FAIL_ON_OPTION,
    config: Optional[Path] = c.CONFIG_OPTION,
) -> None:
    """Decompose the error into bias, variance, distribution shift and validation over-fitting."""
    from dldoctor import __version__
    from dldoctor.checks.evaluate.decomposition import Errors
    from dldoctor.checks.evaluate.report import decomposition_findings, log_findings
    from dldoctor.core.config import load_config
    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.core.ranking import rank
    from dldoctor.loading.metrics_log import parse_metrics
    from dldoctor.render import render

    started = time.perf_counter()
    try:
        cfg = load_config(Path.cwd(), config).values
        irreducible_f = _fraction("irreducible", irreducible) or 0.0
        if metrics is not None:
            if train is not None or val is not None:
                raise UsageError("give either --metrics or --train/--val, not both")
            findings, report = log_findings(parse_metrics(metrics), cfg, irreducible_f)
            target = str(metrics)
        else:
            if train is None or val is None:
                raise UsageError("give --train and --val (errors as fractions), or --metrics FILE",
                                 hint="dldoctor bias-variance --train 0.08 --val 0.15 --test 0.21 --irreducible 0.02")
            errors = Errors(train=_fraction("train", train), val=_fraction("val", val), test=_fraction("test", test),
                            train_val=_fraction("train-val", train_val), irreducible=irreducible_f)
            findings, report = decomposition_findings(errors, cfg)
            target = "command-line errors"
    except DldoctorError as exc:
        c.fail(exc)
    except ValueError as exc:
        c.fail(UsageError(str(exc)))
    diagnosis = Diagnosis(__version__, target, rank(findings), (), 0, "-", time.perf_counter() - started,
                          "bias-variance", "standard", {"bias_variance": report})
    c.write_output(render(diagnosis, fmt), output)
    c.exit_with(diagnosis.exit_code(fail_on))
