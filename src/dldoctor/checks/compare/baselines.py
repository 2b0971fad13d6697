"""Compare the model to simple baselines on the validation split."""

from __future__ import annotations

from dldoctor.api import Check, Severity, Stage, keys
from dldoctor.api.measure import baselines
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import difference_noise


class BaselinesCheck(Check):
    """The model beats simple baselines: the majority class (or mean), a linear model, its own inputs zeroed.

    After the short training run, the model's validation error is compared with a
    constant predictor fitted on the training labels and with a linear model on the
    flattened inputs. Not beating the constant predictor is a bug; not beating a
    linear model within the budget is suspicious. When it fails, the model is also
    trained with its inputs zeroed: matching that run means it ignores its inputs.
    """

    name = "baselines"
    stage = Stage.COMPARE
    order = 10
    requires = ("forward_pass", "val_loader")
    emits = ("worse-than-baseline",)

    def run(self, ctx):
        cfg = ctx.config.section("baselines")
        run = training_run.main_run(ctx)
        last = run.last
        if last is None or last.val is None or last.val.error is None:
            return []
        scores = ctx.measure(keys.BASELINES, lambda: baselines(ctx, int(cfg["max_samples"]), int(cfg["linear_steps"])))
        if scores is None or scores.constant is None:
            return []
        margin = float(cfg["margin"])
        model = last.val.error
        evidence = [f"validation {run.error_name}: model {model:.3f} after {last.epoch} epoch(s) / {last.steps} "
                    f"steps; {scores.constant_name} {scores.constant:.3f}"
                    + (f"; linear model on the flattened inputs {scores.linear:.3f}" if scores.linear is not None
                       else "")]
        metrics = {"model_val_error": model, "constant_val_error": scores.constant, "linear_val_error": scores.linear}
        if model > scores.constant - margin:
            zero = training_run.zero_input_run(ctx).last
            zero_err = zero.val.error if zero and zero.val else None
            if zero_err is not None:
                evidence.append(f"the same model trained with every input zeroed: {zero_err:.3f}"
                                + (" -- no different: the model does not learn from its inputs (labels that do not "
                                   "match the inputs, or an input pipeline bug)" if abs(zero_err - model) <= margin
                                   else ""))
                metrics["zero_input_val_error"] = zero_err
            return [self.finding(
                "worse-than-baseline", Severity.ERROR, 0.9,
                title=f"the model ({model:.3f}) does not beat the {scores.constant_name} ({scores.constant:.3f})",
                evidence=evidence, metrics=metrics, location="model",
                fixes=["Check that inputs and labels belong together (dldoctor run's label-signal check).",
                       "Check that the model sees the inputs: the pre-processing, the forward, what reaches the loss.",
                       "Overfit a single batch first: dldoctor overfit-batch."],
            )]
        # A gap within the sampling noise of the validation split is no evidence.
        n_val = last.val.samples
        noise = difference_noise(model, n_val, run.error_name)
        if scores.linear is not None and model > scores.linear + max(margin, noise):
            still_improving = run.may_close(model - scores.linear, margin / 4)
            return [self.finding(
                "worse-than-baseline", Severity.INFO if still_improving else Severity.WARNING,
                0.35 if still_improving else 0.6,
                title=f"the model ({model:.3f}) is worse than a linear model on the raw inputs ({scores.linear:.3f}) "
                      f"after the short run",
                evidence=evidence + [f"budget: {run.budget.epochs} epochs, {run.budget.steps} steps, "
                                     f"{run.budget.seconds:g} s (stopped by {run.stopped_by})"
                                     + ("; validation error was still falling fast enough to close the gap "
                                        "in a longer run" if still_improving else "")],
                metrics=metrics, location="model",
                fixes=["Train longer or tune the learning rate: a deep model should at least match a linear one.",
                       "Check the input pre-processing (normalisation) and the architecture's fit to the data."],
            )]
        return []
