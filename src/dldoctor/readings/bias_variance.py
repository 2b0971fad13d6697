"""Turn errors (numbers, a metrics log, or dldoctor's own run) into bias-variance findings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dldoctor.core.errors import UsageError
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.loading.metrics_log import MetricsLog
from dldoctor.readings.decomposition import Errors, RemedyContext, decompose, judge
from dldoctor.readings.epochs import EpochReading, read_epochs

CHECK = "bias-variance"
STAGE = "evaluate"


def _finding(item: Mapping[str, Any], check: str = CHECK) -> Finding:
    return Finding(id=item["id"], severity=Severity(item["severity"]), confidence=item["confidence"],
                   title=item["title"], check=check, evidence=tuple(item["evidence"]), fixes=tuple(item["fixes"]),
                   metrics=item.get("metrics", {}), location="model", stage=STAGE)


def decomposition_findings(errors: Errors, config: Mapping[str, Mapping[str, Any]],
                           context: RemedyContext = RemedyContext(), check: str = CHECK,
                           extra_evidence: Sequence[str] = ()) -> tuple[list[Finding], dict[str, Any]]:
    decomposition = decompose(errors)
    items = judge(decomposition, config["bias_variance"], context)
    findings = []
    for item in items:
        if extra_evidence and item["severity"] == "warning":
            item = {**item, "evidence": [*item["evidence"], *extra_evidence]}
        findings.append(_finding(item, check))
    return findings, decomposition.to_dict()


def _last_pair(train: Sequence[float], val: Sequence[float]) -> int | None:
    for i in range(min(len(train), len(val)) - 1, -1, -1):
        if math.isfinite(train[i]) and math.isfinite(val[i]):
            return i
    return None


def _at(series: Sequence[float] | None, i: int) -> float | None:
    if series is None or i >= len(series) or not math.isfinite(series[i]):
        return None
    return series[i]


def log_findings(log: MetricsLog, config: Mapping[str, Mapping[str, Any]], irreducible: float = 0.0,
                 context: RemedyContext = RemedyContext()) -> tuple[list[Finding], dict[str, Any]]:
    """Findings from a per-epoch log: the decomposition at the last epoch, plus the curves' patterns."""
    train, val = log.errors("train"), log.errors("val")
    unit = "error"
    if train is None or val is None:
        train, val, unit = log.losses("train"), log.losses("val"), "loss"
    if train is None or val is None:
        raise UsageError(f"{log.source}: needs training and validation values of one kind "
                         "(train_acc + val_acc, train_error + val_error, or train_loss + val_loss)")
    i = _last_pair(train, val)
    if i is None:
        raise UsageError(f"{log.source}: no epoch has both a training and a validation value")
    test = _at(log.errors("test") if unit == "error" else log.losses("test"), i)
    train_val = _at(log.errors("train_val") if unit == "error" else log.losses("train_val"), i)
    reading: EpochReading = read_epochs(train, val, config["epochs"], log.losses("train"))
    epoch_of = lambda k: log.epochs[k] if k is not None and k < len(log.epochs) else None  # noqa: E731
    notes = []
    best_epoch = epoch_of(reading.overfit_from)
    if best_epoch is not None:
        notes.append(f"validation {unit} is lowest ({reading.best_val:.4g}) at epoch {best_epoch:g} and rises by "
                     f"{reading.val_rise:.4g} afterwards while training {unit} keeps falling")
    if reading.plateau_from is not None:
        notes.append(f"the training curve has been flat since epoch {epoch_of(reading.plateau_from):g}")
    context = RemedyContext(**{**context.__dict__, "best_epoch": best_epoch})
    errors = Errors(train=train[i], val=val[i], test=test, train_val=train_val, irreducible=irreducible, unit=unit)
    findings, report = decomposition_findings(errors, config, context, extra_evidence=[
        f"at epoch {log.epochs[i]:g} of {len(log.epochs)} in {log.source}", *notes])
    if best_epoch is not None and not any(f.id == "overfitting" for f in findings):
        findings.append(Finding(
            id="overfitting", severity=Severity.WARNING, confidence=0.7,
            title=f"validation {unit} rises after epoch {best_epoch:g} while training {unit} falls",
            check=CHECK, evidence=tuple(notes),
            fixes=(f"Stop early at epoch {best_epoch:g} (keep that checkpoint).",
                   "Add regularisation or data (see dldoctor explain overfitting)."),
            metrics={"best_epoch": best_epoch, "best_val": reading.best_val}, location="model", stage=STAGE))
    if reading.diverges_at is not None:
        findings.append(Finding(
            id="lr-too-high", severity=Severity.WARNING, confidence=0.6,
            title=f"the training loss diverges at epoch {epoch_of(reading.diverges_at):g}",
            check=CHECK,
            evidence=(f"training loss per epoch: {', '.join(f'{x:.4g}' for x in (log.losses('train') or train))}",),
            fixes=("Lower the learning rate, or decay it before that epoch.", "Clip the gradient norm.",
                   "Check for a data problem in the batches of that epoch (NaN inputs, a corrupt file)."),
            metrics={"diverges_at_epoch": epoch_of(reading.diverges_at)}, location="optimizer", stage=STAGE))
    report = {**report, "epoch": log.epochs[i], "epochs": len(log.epochs), "source": log.source,
              "best_epoch": best_epoch}
    return findings, report
