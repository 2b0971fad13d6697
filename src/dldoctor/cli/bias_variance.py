"""``dldoctor bias-variance``: decompose the error from numbers or a metrics log (no model needed)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from dldoctor.cli import common as c
from dldoctor.core.errors import DldoctorError, UsageError


def _scale_hint(values: list[tuple[str, float]]) -> str:
    """The two ways to state the scale of these command-line values, written out."""
    values = [(name, v) for name, v in values if not (name == "irreducible" and v == 0)]  # the default
    as_fractions = " ".join(f"--{name} {v / 100 if v > 1 else v:g}" for name, v in values)
    as_percent = " ".join(f"--{name} {v:g}" for name, v in values)
    return ("State the scale once. If the values above 1 are percentages, give all as fractions: "
            f"{as_fractions}. If all are percentages (values of 1 or less included), say so: {as_percent} --percent.")


def command_line_errors(values: list[tuple[str, float]], percent: bool) -> dict[str, float]:
    """The command line's errors as fractions, on one scale decided for all of them.

    Args:
        values: ``(option name without --, value)`` of each error given (irreducible included).
        percent: ``--percent`` was given: every value is a percentage.

    Returns:
        The option name -> the error as a fraction.

    Raises:
        UsageError: a value outside [0, 100], or fractions mixed with percentages
            (see :func:`dldoctor.loading.metrics_log.decide_scale`).
    """
    from dldoctor.loading.metrics_log import Reading, decide_scale

    scale = decide_scale([Reading(v, f"--{name}") for name, v in values], percent, hint=_scale_hint(values))
    return {name: v / scale for name, v in values}


@c.shared_options("fmt", "output", "fail_on", "config")
def bias_variance(
    common: c.CommonOptions,
    train: float | None = typer.Option(None, "--train",
                                          help="Training error: a fraction (0.08) or a percentage (8), one scale "
                                               "for all the errors given."),
    val: float | None = typer.Option(None, "--val", help="Validation error."),
    test: float | None = typer.Option(None, "--test", help="Test error."),
    train_val: float | None = typer.Option(None, "--train-val",
                                              help="Error on a split held out from the training distribution."),
    irreducible: float = typer.Option(0.0, "--irreducible", help="Best achievable (e.g. human-level) error."),
    metrics: Path | None = typer.Option(None, "--metrics", dir_okay=False,
                                           help="A CSV/JSON per-epoch log (train_loss, val_acc, epoch, ...)."),
    percent: bool = typer.Option(False, "--percent",
                                 help="Every error and accuracy given (and in the log) is a percentage: 8 = 8%. "
                                      "Without it: all within [0, 1] are fractions, all above 1 percentages, "
                                      "a mix is refused."),
) -> None:
    """Decompose the error into bias, variance, distribution shift and validation over-fitting.

    Errors and accuracies are fractions or percentages, one scale for the whole input.
    """
    from dldoctor import __version__
    from dldoctor.core.config import load_config
    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.core.ranking import rank
    from dldoctor.loading.metrics_log import Reading, parse_metrics
    from dldoctor.readings.bias_variance import decomposition_findings, log_findings
    from dldoctor.readings.decomposition import Errors

    fail_on, config = common.fail_on, common.config
    started = time.perf_counter()
    try:
        cfg = load_config(Path.cwd(), config).values
        if metrics is not None:
            given = [f"--{n}" for n, v in (("train", train), ("val", val), ("test", test), ("train-val", train_val))
                     if v is not None]
            if given:
                raise UsageError(f"give either --metrics or {'/'.join(given)}, not both")
            # --irreducible shares the log's scale: one decision for the whole input.
            log = parse_metrics(metrics, percent, extra=(Reading(irreducible, "--irreducible"),))
            findings, report = log_findings(log, cfg, irreducible / log.scale)
            target = str(metrics)
        else:
            if train is None or val is None:
                raise UsageError("give --train and --val (errors as fractions or percentages), or --metrics FILE",
                                 hint="dldoctor bias-variance --train 0.08 --val 0.15 --test 0.21 --irreducible 0.02")
            values = [(n, v) for n, v in (("train", train), ("val", val), ("test", test), ("train-val", train_val),
                                          ("irreducible", irreducible)) if v is not None]
            e = command_line_errors(values, percent)
            errors = Errors(train=e["train"], val=e["val"], test=e.get("test"), train_val=e.get("train-val"),
                            irreducible=e["irreducible"])
            findings, report = decomposition_findings(errors, cfg)
            target = "command-line errors"
    except DldoctorError as exc:
        c.fail(exc)
    except ValueError as exc:
        c.fail(UsageError(str(exc)))
    diagnosis = Diagnosis(__version__, target, rank(findings), (), 0, "-", time.perf_counter() - started,
                          "bias-variance", "standard", {"bias_variance": report})
    c.write_reports(diagnosis, c.reports_of(common))
    c.exit_with(diagnosis.exit_code(fail_on))
