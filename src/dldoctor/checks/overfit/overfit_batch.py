"""Overfit a single batch, read the curve, and confirm its cause by experiment."""

from __future__ import annotations

import math

from dldoctor.api import Check, Severity, Stage, keys, lookup
from dldoctor.api.keys import SingleBatchFit
from dldoctor.api.measure import Curve, Setup, batch_size_of, experiments
from dldoctor.api.read import CurveReading, curves, nonfinite

#: Stage-1 root causes that, found at error severity, explain a failed fit.
STAGE1_ROOTS = ("loss-input-probabilities", "loss-broadcast", "batch-mixing", "no-gradient-flow",
                "bad-initialization", "numerical-instability", "label-out-of-range", "wrong-mode",
                "input-not-normalized", "dead-activations", "loss-sign-flipped")


def _lr_text(curve: Curve) -> str:
    return f"lr={curve.lr:.3g}"


class OverfitBatchCheck(Check):
    """A fresh model drives the loss on one batch to near zero; if not, an experiment says why.

    Trains from the fixed initial weights on one batch with the user's optimiser and
    reads the curve (converged, decreasing, plateau, goes up, explodes, oscillates).
    For a curve that fails, it runs the few experiments that separate the causes, each
    from the same weights, and stops at the first that fixes the curve: the learning
    rate scaled down (x0.1, x0.01) or up (x10, x100, x1000), the loss negated, weight decay and
    dropout off, a larger model (from the spec function's own integer arguments), fewer
    samples. A cause found in stage 1 explains the curve instead. A run that turns NaN in
    an operation that makes one by itself (a log of 0) is re-run at a tenth of the learning
    rate, past convergence: a NaN that comes back, later, is the computation's, localised
    to the operation and line that first made it, not the learning rate's.
    """

    name = "overfit-batch"
    stage = Stage.OVERFIT
    order = 10
    requires = ("forward_pass",)
    emits = tuple(dict.fromkeys(("lr-too-high", "lr-too-low", "loss-sign-flipped", "over-regularization",
                                 "model-too-small", "numerical-instability", "exploding-gradients", *STAGE1_ROOTS)))

    def run(self, ctx):
        base = experiments.baseline(ctx)
        reading = curves.reading(ctx, base)
        failed = reading.shape != "converged"
        # Published before the experiments too: a failed fit this check could not finish
        # explaining is not one a later check may judge through.
        ctx.results[keys.SINGLE_BATCH_FIT] = SingleBatchFit(reading, explained=failed)
        if not failed:
            if reading.converged_at is not None:
                ctx.measured("overfit.steps_to_fit", reading.converged_at, unit="steps",
                             noise=curves.crossing_noise(base.losses, reading.converged_at), better="lower",
                             title=f"optimizer steps until one batch is fitted (at {_lr_text(base)})")
            return []
        findings = self._why(ctx, base, reading) or []
        ctx.results[keys.SINGLE_BATCH_FIT] = SingleBatchFit(reading, explained=bool(findings))
        return findings

    def _why(self, ctx, base: Curve, reading: CurveReading) -> list:
        """The findings that say why the single batch does not fit (none when it does by its metric)."""
        curve_text = f"single batch at {_lr_text(base)}: {reading.describe()} {curves.sparkline(base.losses)}"
        explained = self._explained_by_earlier(ctx, curve_text)
        if explained:
            return explained
        if curves.fitted_by_metric(base, reading):
            return []  # the loss has a floor, but every sample of the batch is right
        if reading.shape in ("goes-up", "explodes", "oscillates"):
            return self._too_high_or_flipped(ctx, base, reading, curve_text)
        if reading.shape == "falls-below-zero":
            return self._sign(ctx, base, reading, curve_text) or []
        return self._stuck(ctx, base, reading, curve_text)

    # -- a cause already found --------------------------------------------------
    def _explained_by_earlier(self, ctx, curve_text: str):
        for finding in ctx.findings:
            if finding.stage == Stage.RUN.label and finding.id in STAGE1_ROOTS and finding.severity is Severity.ERROR:
                return [self.finding(finding.id, finding.severity, finding.confidence, title=finding.title,
                                     evidence=[*finding.evidence, f"and the single batch does not fit: {curve_text}"],
                                     fixes=finding.fixes, metrics=finding.metrics, location=finding.location)]
        return None

    # -- the experiments -----------------------------------------------------------
    def _try(self, ctx, setup: Setup, base_reading: CurveReading) -> tuple[Curve, CurveReading, bool]:
        curve = experiments.run(ctx, setup)
        r = curves.reading(ctx, curve)
        return curve, r, curves.fixes_curve(ctx, r, base_reading)

    @staticmethod
    def _result(curve: Curve, r: CurveReading, setup: Setup) -> str:
        return f"with {setup.label} ({_lr_text(curve)}): {r.describe()} {curves.sparkline(curve.losses)}"

    def _too_high_or_flipped(self, ctx, base: Curve, reading: CurveReading, curve_text: str):
        tried = []
        reg = experiments.regularization(ctx)
        steady: CurveReading | None = None  # the run without dropout, when it no longer jitters
        if reading.shape == "oscillates" and reg["dropout"] > 0:
            # Dropout re-samples its mask every step, so the loss of one batch jitters by
            # design; if the batch fits without it, the jitter is dropout's, not the step size's.
            setup = Setup(no_regularization=True)
            curve, r, fixed = self._try(ctx, setup, reading)
            tried.append(self._result(curve, r, setup))
            if r.shape in ("decreasing", "converged") and r.final < r.initial:
                steady = r
            if fixed:
                return [self.finding(
                    "over-regularization", Severity.INFO, 0.4,
                    title=f"dropout {reg['dropout']:g} makes the single-batch loss jitter; without it the batch fits",
                    evidence=[curve_text, tried[-1]],
                    fixes=["Nothing to fix if validation error is fine; lower the dropout rate if the model "
                           "under-fits."],
                    metrics={**reg, "experiment_final": r.final}, location="model",
                )]
        if base.first_nonfinite is not None:
            unstable = self._nan_not_the_lr(ctx, base, curve_text)
            if unstable is not None:
                return [unstable]
        # A rising loss, or one that starts below zero and runs away downwards, points to
        # the sign first; an exploding or oscillating one to the step size.
        sign_first = reading.shape == "goes-up" or reading.initial < 0
        order = [Setup(negate_loss=True), Setup(lr_scale=0.1), Setup(lr_scale=0.01)] if sign_first \
            else [Setup(lr_scale=0.1), Setup(lr_scale=0.01), Setup(negate_loss=True)]
        for setup in order:
            curve, r, fixed = self._try(ctx, setup, reading)
            tried.append(self._result(curve, r, setup))
            if not fixed:
                continue
            if setup.negate_loss:
                return [self._sign_finding(curve_text, tried, base, curve, r)]
            severity = Severity.WARNING if reading.shape == "oscillates" else Severity.ERROR
            return [self.finding(
                "lr-too-high", severity, 0.9 if r.shape == "converged" else 0.7,
                title=f"the learning rate {base.lr:.3g} is too high: the loss {reading.shape.replace('-', ' ')}; "
                      f"at {curve.lr:.3g} it {'converges' if r.shape == 'converged' else 'falls'}",
                evidence=[curve_text, tried[-1]],
                fixes=[f"Lower the learning rate to about {curve.lr:.3g} (x{setup.lr_scale:g}).",
                       "Add warm-up or a decaying schedule; clip the gradient norm (clip_grad_norm_).",
                       "Run `dldoctor tune --lr-finder` for a measured learning-rate range."],
                metrics={"lr": base.lr, "fixed_lr": curve.lr, "baseline_final": reading.final,
                         "experiment_final": r.final, "converged_at": r.converged_at, "confirmed_by": setup.label},
                location="optimizer",
            )]
        grads = [g for g in base.grad_norms if math.isfinite(g)]
        if reading.shape == "explodes":
            grew = len(grads) > 2 and grads[-1] > 100 * grads[0]
            diagnosis = "exploding-gradients" if grew or base.gradient_overflow else "numerical-instability"
            return [self.finding(diagnosis, Severity.WARNING, 0.4,
                                 title="the single-batch loss explodes and no experiment fixed it",
                                 evidence=[curve_text, *tried],
                                 metrics={"first_nonfinite": reading.first_nonfinite}, location="model")]
        if steady is not None:
            # Smaller steps did not help, and without dropout the loss falls without jitter: the
            # oscillation was dropout's mask, and the batch is only slower to fit than the budget.
            return [self.finding(
                "over-regularization", Severity.INFO, 0.3,
                title=f"dropout {reg['dropout']:g} makes the single-batch loss jitter; without it the loss falls "
                      "steadily",
                evidence=[curve_text, *tried],
                fixes=["Nothing to fix if validation error is fine; lower the dropout rate if the model "
                       "under-fits."],
                metrics={**reg, "experiment_final": steady.final}, location="model")]
        return [self.finding("lr-too-high", Severity.WARNING, 0.3,
                             title=f"the single-batch loss {reading.shape.replace('-', ' ')}; smaller learning rates "
                                   "and a negated loss did not fix it",
                             evidence=[curve_text, *tried], location="optimizer")]

    def _nan_not_the_lr(self, ctx, base: Curve, curve_text: str):
        """``numerical-instability`` when a smaller learning rate only delays the NaN, else None.

        Asked only when the first non-finite value came from an operation that makes one by
        itself (a log of 0, a division by 0, an exp past the float range: ``unsafe_op``); a
        layer or a product that overflows only says the values grew, which the other
        experiments judge (a smaller rate that fixes it, exploding gradients). The run is
        re-run from the same weights at x0.1 of the learning rate, past convergence, for
        ``overfit.nan_recheck_stretch`` times as many steps as it takes to move as far at
        the smaller rate (the NaN step over the scale: an optimiser's step is proportional
        to its rate), at least the baseline's budget, at most
        ``overfit.nan_recheck_max_steps``. A NaN that comes back there, at the same
        operation or at another unsafe one, is the computation's: the learning rate only
        decides when the values get there. When the smaller rate stays finite for the
        whole budget, the learning rate is the cause (the caller's experiments say so).
        """
        origin = base.nonfinite.origin if base.nonfinite is not None else None
        if origin is None or base.first_nonfinite is None or not nonfinite.unsafe_op(origin.op):
            return None
        least, most = int(ctx.config.get("overfit.steps")), int(ctx.config.get("overfit.nan_recheck_max_steps"))
        stretch = float(ctx.config.get("overfit.nan_recheck_stretch"))
        scale = 0.1
        steps = min(most, max(least, math.ceil(stretch * (base.first_nonfinite + 1) / scale)))
        curve = experiments.run(ctx, Setup(lr_scale=scale, run_through=True), steps)
        low = curve.nonfinite.origin if curve.nonfinite is not None else None
        if curve.first_nonfinite is None or low is None:
            return None
        if low.op != origin.op and not nonfinite.unsafe_op(low.op):
            return None
        return self._instability_finding(base, curve, curve_text)

    def _instability_finding(self, base: Curve, curve: Curve, curve_text: str):
        assert base.nonfinite is not None and curve.nonfinite is not None
        loc = curve.nonfinite
        origin = loc.origin
        first = base.nonfinite.origin
        assert origin is not None and first is not None
        same = first.op == origin.op
        _, lines = nonfinite.describe_localisation(loc)
        where = origin.user_line.split(": `")[0] if origin.user_line else ""
        kind = {"nan": "NaN", "inf": "Inf"}.get(origin.kind, "NaN/Inf")
        evidence = [
            curve_text + ("" if same else f"; the first non-finite value came from {first.op}"),
            f"re-run from the same initial weights at x{curve.setup.lr_scale:g} of the learning rate "
            f"({curve.lr:.3g}), past convergence: non-finite again at step {curve.first_nonfinite} instead of "
            f"{base.first_nonfinite}"
            + (", in the same operation" if same else f", now in {origin.op}")
            + ": a smaller step only delays it, so the learning rate is not the cause",
            *lines]
        return self.finding(
            "numerical-instability", Severity.ERROR, 0.85 if same else 0.75,
            title=f"{origin.op} makes {kind} at every learning rate tried (step {base.first_nonfinite} at "
                  f"lr={base.lr:.3g}, step {curve.first_nonfinite} at {curve.lr:.3g})"
                  + (f" in {nonfinite.where_label(origin)}" if origin.phase != "backward" else " in backward"),
            evidence=evidence,
            fixes=tuple(dict.fromkeys(nonfinite.origin_fixes(origin)
                                      + list(lookup("numerical-instability").fixes[:2]))),
            metrics={"first_nonfinite": base.first_nonfinite, "lr": base.lr, "lower_lr": curve.lr,
                     "lower_lr_first_nonfinite": curve.first_nonfinite, "op": origin.op, "phase": origin.phase,
                     "user_line": origin.user_line, "same_op": same,
                     "confirmed_by": f"lr={curve.lr:.3g}: non-finite again"},
            location=where or nonfinite.location_of(loc))

    def _sign_finding(self, curve_text, tried: list[str], base: Curve, curve: Curve, r: CurveReading):
        return self.finding(
            "loss-sign-flipped", Severity.ERROR, 0.9,
            title="the optimiser maximises the loss: minimising the negated loss fits the batch",
            evidence=[curve_text, *tried],
            fixes=["Check the sign of the loss: return the negative log-likelihood (loss = -log_prob.mean()), "
                   "not the log-likelihood.",
                   "Check the optimiser for maximize=True, or a gradient that is negated before step().",
                   "Check custom losses for a subtraction in the wrong order."],
            metrics={"baseline_final": base.losses[-1] if base.losses else float("nan"), "negated_final": r.final,
                     "confirmed_by": "negated loss"},
            location="loss",
        )

    def _sign(self, ctx, base: Curve, reading: CurveReading, curve_text: str):
        """The loss falls below zero without bound: does the task metric get worse while it falls?"""
        metric_note = ""
        if len(base.metric) >= 2:
            start, end = base.metric[0], base.metric[-1]
            worse = end < start if base.metric_name == "accuracy" else end > start
            metric_note = f"meanwhile batch {base.metric_name} went {start:.3g} -> {end:.3g}" + \
                (" (worse)" if worse else "")
        curve, r, _ = self._try(ctx, Setup(negate_loss=True), reading)
        improved = False
        if len(curve.metric) >= 2:
            improved = curve.metric[-1] > curve.metric[0] if curve.metric_name == "accuracy" \
                else curve.metric[-1] < curve.metric[0]
        if improved:
            evidence_metric = f"with the loss negated, batch {curve.metric_name} went {curve.metric[0]:.3g} -> " \
                              f"{curve.metric[-1]:.3g}"
            f = self._sign_finding(curve_text, [evidence_metric], base, curve, r)
            return [self.finding(f.id, f.severity, f.confidence, title="the loss falls below zero while the "
                                 "predictions get worse: its sign is flipped", evidence=[curve_text, metric_note,
                                                                                         evidence_metric],
                                 fixes=f.fixes, metrics=f.metrics, location=f.location)]
        return None

    def _too_small(self, reading: CurveReading, r: CurveReading, evidence: list[str], title: str,
                   metrics: dict, first_fix: str | None):
        fixes = ["Make the model bigger: more units per layer first (e.g. 4x wider), then more layers.",
                 "Check that the architecture suits the input (convolutions for images, ...)."]
        return self.finding(
            "model-too-small", Severity.WARNING, 0.8 if r.shape == "converged" else 0.6, title=title,
            evidence=evidence, fixes=[first_fix, *fixes] if first_fix else fixes,
            metrics={**metrics, "baseline_final": reading.final, "experiment_final": r.final,
                     "confirmed_by": title}, location="model",
        )

    def _stuck(self, ctx, base: Curve, reading: CurveReading, curve_text: str):
        tried = []
        reg = experiments.regularization(ctx)
        if reg["weight_decay"] > 0 or reg["dropout"] > 0:
            setup = Setup(no_regularization=True)
            curve, r, fixed = self._try(ctx, setup, reading)
            tried.append(self._result(curve, r, setup))
            if fixed:
                return [self.finding(
                    "over-regularization", Severity.ERROR if reading.shape == "plateau" else Severity.WARNING, 0.85,
                    title=f"regularisation (weight decay {reg['weight_decay']:g}, dropout {reg['dropout']:g}) stops "
                          "the model from fitting one batch",
                    evidence=[curve_text, tried[-1]],
                    fixes=[f"Lower the weight decay (now {reg['weight_decay']:g}) by 10-100x" if reg["weight_decay"]
                           else f"Lower the dropout rate (now {reg['dropout']:g})",
                           "Fit first without regularisation, then add it back while watching validation error."],
                    metrics={**reg, "experiment_final": r.final, "confirmed_by": setup.label}, location="optimizer",
                )]
        for scale in (10.0, 100.0, 1000.0):
            setup = Setup(lr_scale=scale)
            curve, r, fixed = self._try(ctx, setup, reading)
            tried.append(self._result(curve, r, setup))
            if fixed:
                # Still falling steadily: the model trains, a faster rate merely exists.
                # That is worth knowing, not a failure (a healthy slow model must pass).
                slow = reading.shape == "decreasing"
                return [self.finding(
                    "lr-too-low", Severity.INFO if slow else Severity.ERROR, 0.5 if slow else 0.9,
                    title=f"the learning rate {base.lr:.3g} is too low: the loss "
                          f"{'falls slowly' if slow else 'plateaus'}; at {curve.lr:.3g} it "
                          f"{'converges' if r.shape == 'converged' else 'falls much further'}",
                    evidence=[curve_text, tried[-1]],
                    fixes=[f"Raise the learning rate to about {curve.lr:.3g} (x{scale:g}).",
                           "Run `dldoctor tune --lr-finder` for a measured learning-rate range."],
                    metrics={"lr": base.lr, "fixed_lr": curve.lr, "baseline_final": reading.final,
                             "experiment_final": r.final, "confirmed_by": setup.label},
                    location="optimizer",
                )]
        larger = experiments.larger_model(ctx)
        if larger is not None:
            variant, curve = larger
            r = curves.reading(ctx, curve)
            tried.append(f"with a larger model, {variant.describe} ({_lr_text(curve)}): {r.describe()} "
                         f"{curves.sparkline(curve.losses)}")
            if curves.fixes_curve(ctx, r, reading):
                return [self._too_small(reading, r, [curve_text, *tried],
                                        f"a larger model ({variant.name}={variant.scaled}) fits the batch "
                                        f"{'' if r.shape == 'converged' else 'much better '}at the same learning "
                                        f"rate; {variant.name}={variant.value} cannot",
                                        {"knob": variant.name, "value": variant.value, "scaled": variant.scaled,
                                         "parameters": variant.base_parameters,
                                         "larger_parameters": variant.parameters},
                                        f"Raise {variant.name} from {variant.value} (e.g. to {variant.scaled}): "
                                        "the larger model "
                                        f"{'fits' if r.shape == 'converged' else 'fits much better'}.")]
        samples = int(ctx.config.get("overfit.capacity_samples"))
        setup = Setup(samples=samples)
        curve, r, fixed = self._try(ctx, setup, reading)
        tried.append(self._result(curve, r, setup))
        if fixed:
            return [self._too_small(reading, r, [curve_text, *tried],
                                    f"the model fits {samples} samples but not a batch of "
                                    f"{batch_size_of(experiments.overfit_batches(ctx, 1)[0])}: it lacks capacity",
                                    {"samples_fitted": samples}, None)]
        if reading.shape == "plateau" and reading.best < reading.final:
            # It dipped, then stalled above its best: a step too large to settle into the
            # valley looks like a plateau too. Tried last, after every cheaper explanation.
            setup = Setup(lr_scale=0.1)
            curve, r, fixed = self._try(ctx, setup, reading)
            tried.append(self._result(curve, r, setup))
            if fixed:
                return [self.finding(
                    "lr-too-high", Severity.WARNING, 0.7 if r.shape == "converged" else 0.5,
                    title=f"the loss stalls above its best at lr={base.lr:.3g}; at {curve.lr:.3g} it "
                          f"{'converges' if r.shape == 'converged' else 'falls much further'}",
                    evidence=[curve_text, *tried],
                    fixes=[f"Lower the learning rate to about {curve.lr:.3g} (x0.1), or decay it (a schedule).",
                           "Run `dldoctor tune --lr-finder` for a measured learning-rate range."],
                    metrics={"lr": base.lr, "fixed_lr": curve.lr, "baseline_final": reading.final,
                             "experiment_final": r.final, "confirmed_by": "lr x0.1"},
                    location="optimizer",
                )]
        if reading.shape == "plateau":
            return [self.finding(
                "lr-too-low", Severity.WARNING, 0.3,
                title="the single-batch loss plateaus and no experiment fixed it",
                evidence=[curve_text, *tried],
                fixes=["Check what reaches the loss (outputs vs targets) and that gradients reach every layer.",
                       "Try a much larger learning rate or another optimiser (Adam, lr=1e-3)."],
                metrics={"baseline_final": reading.final}, location="optimizer",
            )]
        return []
