"""The bias-variance report of the short training run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from dldoctor.api import Check, Finding, Severity, Stage, keys
from dldoctor.api.measure import regularization
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import (
    Errors,
    RemedyContext,
    decompose,
    decomposition_findings,
    gap_standard_error,
    read_epochs,
    training_loss_left,
)


def read_variance(finding: Finding, se: float | None, n_val: int | None, z: float, warn: float) -> Finding | None:
    """Keep an over-fitting finding only as far as the validation set's size supports it.

    The gap must exceed ``z`` standard errors to be reported at all (z = 2: a gap that
    large arises by chance about 1 time in 40 when the model generalises perfectly),
    and its lower bound (gap - z standard errors) must exceed ``warn`` for a warning:
    "validation error far above training error" then holds at that confidence, not
    only for the point estimate. With 60 validation samples and 10% validation error,
    a gap of 0.08 is 2 standard errors, its lower bound 0: an ordinary gap.
    """
    if se is None or finding.id != "overfitting":
        return finding
    value = finding.metrics.get("value")
    gap = float(value) if isinstance(value, (int, float)) else 0.0
    low = gap - z * se
    metrics = {**finding.metrics, "gap_standard_error": se, "gap_lower_bound": low}
    if low <= 0:
        return None
    if finding.severity is Severity.WARNING and low <= warn:
        samples = f"{n_val} validation samples" if n_val else "the validation set"
        return dataclasses.replace(
            finding, severity=Severity.INFO, confidence=min(finding.confidence, 0.5), metrics=metrics,
            title=f"{finding.title} -- within what {samples} make ordinary (standard error {se:.3f})",
            evidence=(*finding.evidence,
                      f"the gap {gap:.3f} is {gap / se:.1f} standard errors ({se:.3f}, from {samples}): it could "
                      f"be as small as {max(low, 0.0):.3f}, below the {warn:g} a warning needs"))
    return dataclasses.replace(finding, metrics=metrics)


def read_bias(finding: Finding, floor_known: bool, val_unfinished: bool, val_errors: Sequence[float],
              train_losses: Sequence[float], min_fall: float) -> Finding:
    """Keep an under-fitting warning only where "training error far above the irreducible error" is established.

    With the spec's irreducible error, a run whose validation pace could close the gap
    (``val_unfinished``) is not finished. Without it, bias is measured from zero, an upper
    bound (noisy targets or an entropy floor can leave most of the error unreachable),
    so a run still improving by either measure is at most a note: validation error
    still falling, or training loss still falling clearly at the end of the fixed
    budget (a language model's loss keeps falling while its per-token error, bounded by
    the text's entropy, already looks flat).
    """
    if finding.id != "underfitting":
        return finding
    fall = None if floor_known else training_loss_left(train_losses, min_fall)
    if not val_unfinished and fall is None:
        return finding
    if val_unfinished:
        why = (f"validation error still falls ({val_errors[-2]:.3f} -> {val_errors[-1]:.3f} in the last epoch)"
               + (", fast enough to close the gap in a longer run" if floor_known else ""))
    else:
        why = (f"training was still improving: the training loss fell from {train_losses[-2]:.4g} to "
               f"{train_losses[-1]:.4g} in the last epoch")
    title = finding.title + f" -- but the run is not finished: {why}" + \
        ("" if floor_known else "; give the spec's irreducible_error for a firmer verdict")
    evidence = finding.evidence
    if fall is not None:
        left = "more than its current pace" if math.isinf(fall) else f"about {fall:.1%} more"
        evidence = (*evidence, "the training loss was still falling when the fixed budget ended ("
                    + " -> ".join(f"{x:.4g}" for x in train_losses[-3:]) + f"), with {left} to go at its pace "
                    "(falls slowing geometrically); the best reachable error is not known, so a gap to it is "
                    "not established")
    metrics = {**finding.metrics, **({"train_loss_left": fall} if fall is not None and math.isfinite(fall) else {})}
    return dataclasses.replace(finding, severity=Severity.INFO, confidence=0.35, title=title, evidence=evidence,
                               metrics=metrics)


def _rate_se(unit: str, value: float, n: int | None) -> float | None:
    """One standard error of an error measured on ``n`` samples: binomial for a rate, the
    chi-square floor sqrt(2 / n) for a relative MSE, None for any other unit."""
    if not n:
        return None
    if unit in ("error", "1 - accuracy"):
        rate = min(max(value, 0.0), 1.0)
        return math.sqrt(max(rate * (1 - rate), 1.0 / (n + 2) ** 2) / n)
    if unit == "relative MSE":
        return abs(value) * math.sqrt(2 / n)
    return None


def _noise(se: float | None, now: float, before: float | None) -> float | None:
    """One standard error of a short run's end value: the sampling error the split's size
    gives, widened by half of the last epoch's move when the curve was still moving (where a
    run still falling steeply ends depends on its seed as much as on the model: two seeds of
    the digits example ended 0.084 and 0.111 apart, 3 sampling errors, after a fall of 0.17)."""
    move = abs(now - before) / 2 if before is not None and math.isfinite(before) else 0.0
    if se is None:
        return move or None
    return math.hypot(se, move)


def _record(ctx, errors: Errors, previous: Errors | None, unit: str) -> None:
    """The short run's errors and their decomposition, as the report's measurements (lower
    is better for each), with the standard errors the splits' sizes and the curves give."""
    n_train, n_val, n_test, _ = errors.samples
    for split, value, n in (("train", errors.train, n_train), ("val", errors.val, n_val),
                            ("test", errors.test, n_test)):
        if value is not None and math.isfinite(value):
            before = getattr(previous, split) if previous is not None else None
            ctx.measured(f"short_run.{split}_error", value, unit=unit, better="lower",
                         noise=_noise(_rate_se(unit, value, n), value, before),
                         title=f"{split} {unit} at the end of the short training run")
    decomposition = decompose(errors)
    ses = decomposition.standard_errors()
    earlier = dict(decompose(previous).components()) if previous is not None else {}
    for name, value in decomposition.components():
        if math.isfinite(value):
            ctx.measured(f"bias_variance.{name.replace(' ', '_')}", value, unit=unit, better="lower",
                         noise=_noise(ses.get(name) or None, value, earlier.get(name)),
                         title=f"{name}: its part of the error ({unit})")


def _previous(run, errors: Errors) -> Errors | None:
    """The same errors one epoch earlier (for how fast they were still moving), or None."""
    if len(run.epochs) < 2:
        return None
    e = run.epochs[-2]
    if e.train is None or e.val is None or e.train.error is None or e.val.error is None:
        return None
    test = e.test.error if e.test is not None and e.test.error is not None and errors.test is not None else None
    return dataclasses.replace(errors, train=e.train.error, val=e.val.error, test=test)


class BiasVarianceCheck(Check):
    """Decomposes the short run's error into bias, variance and validation over-fitting, with remedies.

    Uses the train, validation and test errors at the end of the budgeted run, the
    spec's ``irreducible_error``, and the per-epoch curves (where over-fitting starts).
    A model still improving when the budget ends is not called under-fitting with
    confidence. In the thorough profile it also trains on 25% and 50% of the data: if
    validation error still falls steeply with more data, more data ranks first.
    """

    name = "bias-variance"
    stage = Stage.EVALUATE
    order = 10
    requires = ("forward_pass", "val_loader")
    emits = ("underfitting", "overfitting", "val-overfitting", "distribution-shift")

    def run(self, ctx):
        run = training_run.main_run(ctx)
        last = run.last
        if last is None or last.val is None or last.train is None or last.val.error is None:
            return []
        config = ctx.config.values
        vals = [e.val.error for e in run.epochs]
        trains = [e.train.error for e in run.epochs]
        train_losses = [e.train.loss for e in run.epochs if e.train is not None]
        reading = read_epochs(trains, vals, config["epochs"])
        reg = regularization(ctx)
        more_data, curve_text = self._data_curve(ctx, last.val.error)
        context = RemedyContext(parameters=run.parameters, weight_decay=reg["weight_decay"], dropout=reg["dropout"],
                                best_epoch=(reading.overfit_from + 1) if reading.overfit_from is not None else None,
                                train_samples=last.train.samples, more_data_helps=more_data, data_curve=curve_text)
        errors = Errors(train=last.train.error, val=last.val.error,
                        test=last.test.error if last.test and last.test.error is not None else None,
                        irreducible=float(ctx.spec.irreducible_error or 0.0), unit=run.error_name,
                        samples=(last.train.samples, last.val.samples, last.test.samples if last.test else None, None))
        extra = [f"short run: {last.epoch} epoch(s), {last.steps} steps, {last.seconds:.1f} s (stopped by "
                 f"{run.stopped_by}); validation {run.error_name} per epoch: {', '.join(f'{v:.3f}' for v in vals)}; "
                 f"training loss per epoch: {', '.join(f'{x:.4g}' for x in train_losses)}"]
        if curve_text:
            extra.append(curve_text)
        findings, report = decomposition_findings(errors, config, context, check=self.name, extra_evidence=extra)
        ctx.reports[keys.BIAS_VARIANCE_REPORT] = report
        _record(ctx, errors, _previous(run, errors), run.error_name)
        step = float(config["bias_variance"]["min_component"]) / 4
        # Without the spec's irreducible error, bias is measured from zero: an upper bound
        # (noisy regression targets can leave half the variance unexplainable), so any
        # run still improving gets the benefit of the doubt. With it, only a run whose
        # pace could close the gap does.
        floor_known = ctx.spec.irreducible_error is not None
        se = gap_standard_error(run.error_name, last.train.error, last.val.error, last.train.samples,
                                last.val.samples)
        out = []
        for found in findings:
            f = read_variance(found, se, last.val.samples, float(config["bias_variance"]["gap_z"]),
                              float(config["bias_variance"]["warn_component"]))
            if f is None:
                continue
            value = float(f.metrics.get("value", 0.0))
            unfinished = run.may_close(value, step) if floor_known else run.still_improving(step)
            judged = read_bias(f, floor_known, unfinished, vals, train_losses,
                               float(config["bias_variance"]["train_loss_fall"]))
            # A component that is not established as a problem (not the largest, below the
            # warning, within the noise, or a run not finished) is a number of the run: it
            # is in the report's measurements (bias_variance.*), not a diagnosis.
            if judged.severity is not Severity.INFO:
                out.append(judged)
        return out

    def _data_curve(self, ctx, full_val: float) -> tuple[bool | None, str]:
        """Train on 25% and 50% of the data (thorough profile): does more data still help?"""
        if not ctx.config.get("training.data_curve"):
            return None, ""
        points = []
        for fraction in (0.25, 0.5):
            run = training_run.fraction_run(ctx, fraction)
            if run.last and run.last.val and run.last.val.error is not None:
                points.append((fraction, run.last.val.error))
        points.append((1.0, full_val))
        if len(points) < 3:
            return None, ""
        gain = points[1][1] - points[2][1]  # from 50% to 100%
        threshold = float(ctx.config.get("bias_variance.min_component"))
        text = "validation error with 25% / 50% / 100% of the data: " + " / ".join(f"{e:.3f}" for _, e in points)
        return gain > threshold, text
