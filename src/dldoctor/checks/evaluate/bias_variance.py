"""The bias-variance report of the short training run."""

from __future__ import annotations

import dataclasses

from dldoctor.api import Check, Severity, Stage, keys
from dldoctor.api.measure import regularization
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import Errors, RemedyContext, decomposition_findings, read_epochs


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
                 f"{run.stopped_by}); validation {run.error_name} per epoch: {', '.join(f'{v:.3f}' for v in vals)}"]
        if curve_text:
            extra.append(curve_text)
        findings, report = decomposition_findings(errors, config, context, check=self.name, extra_evidence=extra)
        ctx.reports[keys.BIAS_VARIANCE_REPORT] = report
        step = float(config["bias_variance"]["min_component"]) / 4
        # Without the spec's irreducible error, bias is measured from zero: an upper bound
        # (noisy regression targets can leave half the variance unexplainable), so any
        # run still improving gets the benefit of the doubt. With it, only a run whose
        # pace could close the gap does.
        floor_known = ctx.spec.irreducible_error is not None
        out = []
        for f in findings:
            value = float(f.metrics.get("value", 0.0))
            unfinished = run.may_close(value, step) if floor_known else run.still_improving(step)
            if f.id == "underfitting" and unfinished:
                f = dataclasses.replace(
                    f, severity=Severity.INFO, confidence=0.35,
                    title=f.title + " -- but the run is not finished: validation error still falls "
                                    f"({vals[-2]:.3f} -> {vals[-1]:.3f} in the last epoch)"
                                    + (", fast enough to close the gap in a longer run" if floor_known else
                                       "; give the spec's irreducible_error for a firmer verdict"))
            out.append(f)
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
