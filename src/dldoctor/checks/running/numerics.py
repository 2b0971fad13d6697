"""The numerics check: where do NaN and Inf come from, if they appear?"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dldoctor.api import Check, Severity, Stage, keys, lookup
from dldoctor.api.measure import (
    DataNonFinite,
    Localisation,
    StepSymptoms,
    display_path,
    isolated_rng,
    localise,
    scan_batch,
    step_then_forward,
    step_then_localise,
    symptoms_of,
    unpack_batch,
)
from dldoctor.api.read import nonfinite

# The wording of a localised NaN/Inf is shared with the overfit check (readings.nonfinite).
op_family = nonfinite.op_family
origin_fixes = nonfinite.origin_fixes
describe_localisation = nonfinite.describe_localisation
location_of = nonfinite.location_of

ID = "numerical-instability"


def symptom_text(s: StepSymptoms) -> str:
    if not s.loss_finite:
        return f"the loss is {s.loss_value}"
    return (f"the loss is finite ({s.loss_value:.4g}) but {len(s.nonfinite_grads)} parameter tensors get "
            "non-finite gradients")


def data_lines(found: Sequence[tuple[int, Sequence[DataNonFinite]]], n_batches: int) -> list[str]:
    nan = sum(d.nan for _, ds in found for d in ds)
    inf = sum(d.inf for _, ds in found for d in ds)
    lines = [f"{len(found)} of {n_batches} training batches checked hold non-finite values: {nan:,} NaN and "
             f"{inf:,} Inf in total"]
    for i, ds in found[:3]:
        for d in ds:
            cols = ""
            if d.columns:
                shown = ", ".join(map(str, d.columns[:6])) + (" ..." if len(d.columns) > 6 else "")
                cols = f" (feature column{'s' if len(d.columns) > 1 else ''} {shown})"
            lines.append(f"batch {i + 1}: {d.role} {list(d.shape)} holds {d.nan:,} NaN and {d.inf:,} Inf{cols}")
    return lines


def _step_pair(checked: int) -> tuple[int, int]:
    """(batch stepped on, batch run after the step) among ``checked`` batches: the last
    one when no other check shares it (from the third on), then the first."""
    if checked >= 3:
        return checked - 1, 0
    return 0, min(1, checked - 1)


class NumericsCheck(Check):
    """No NaN or Inf in the data, forward pass, loss or gradients; if any, says where they start.

    Checks a few training batches: their floating tensors for non-finite values
    (reported at ``data``), then the loss and gradients of a step on each. When one
    is non-finite, the step is re-run with every torch operation watched, to name
    the first operation that turned finite values into NaN/Inf, the module running
    it and the line of code, or, for backward, the autograd node and the forward
    line that created it. When all batches are clean, one optimiser step and the
    next forward are checked too (a NaN that goes away with a 1000x smaller step is
    the learning rate's, not reported here). Cost: the first batch is the forward
    trace's and the second the gradient-flow check's; the step check (forward and
    backward, the step, one forward) checks the third on its way, so by default the
    check's own work is that step; plus one watched step when something is found.
    """

    name = "numerics"
    stage = Stage.RUN
    order = 15
    requires = ("forward_pass",)
    emits = (ID,)

    def run(self, ctx):
        trace = ctx.forward_trace()
        n = max(1, int(ctx.config.get("numerics.batches")))
        batches = ctx.batches("train", n)
        split = unpack_batch if ctx.spec.forward is None else None
        data = [ctx.measure(keys.NONFINITE_DATA.at(i), lambda b=b: scan_batch(b, split)) for i, b in enumerate(batches)]
        roots = ctx.user_roots

        step_check = bool(ctx.config.get("numerics.step_check"))
        stepped, _ = _step_pair(len(batches))
        # The first batch is the forward trace's and the second the gradient-flow check's;
        # with the step check on, a later batch is the one stepped on, and the step's own
        # first forward/backward is that batch's check (no pass of its own).
        own = stepped if step_check and stepped > 0 else len(batches)
        symptoms = [StepSymptoms(trace.loss_value, tuple(g.name for g in trace.grads if g.grad_nonfinite))]
        symptoms += [symptoms_of(ctx.grad_flow(i)) for i in range(1, own)]
        if own < len(batches):
            full = self._stepped(ctx, batches, 1.0)
            symptoms.append(full.first if full.first is not None else StepSymptoms(None, (), full.error or "?"))
        findings = []

        dirty = [(i, d) for i, d in enumerate(data) if d]
        if dirty:
            harmful = any(symptoms[i].sick for i, _ in dirty)
            lines = data_lines(dirty, len(batches))
            if harmful:
                lines.append("; ".join(f"batch {i + 1}: {symptom_text(symptoms[i])}"
                                       for i, _ in dirty if symptoms[i].sick))
            else:
                lines.append("the loss and gradients of those batches stay finite: the model or loss appears to "
                             "handle them")
            fixes = ("Clean the data before training: find the rows with torch.isnan(X).any(dim=1) (or "
                     "np.isnan), then drop them or impute (the column mean, torch.nan_to_num).",
                     "Look at the pre-processing that produced them: missing values parsed as NaN, a division by a "
                     "zero standard deviation when normalising a constant feature, a log of 0.")
            nan = sum(d.nan for _, ds in dirty for d in ds)
            inf = sum(d.inf for _, ds in dirty for d in ds)
            findings.append(self.finding(
                ID, Severity.ERROR if harmful else Severity.INFO, 0.95 if harmful else 0.9,
                title=f"The training data holds {nan + inf:,} non-finite values (NaN/Inf)",
                evidence=lines, fixes=fixes + lookup(ID).fixes[1:2],
                metrics={"nan_count": nan, "inf_count": inf, "batches_with_nonfinite": len(dirty),
                         "batches_checked": len(batches), "reaches_loss": harmful},
                location="data"))

        sick = [i for i, s in enumerate(symptoms) if s.sick and not data[i]]
        if sick:
            i = sick[0]

            def watched():
                with isolated_rng(ctx.seed):
                    return localise(ctx.fresh_model(), batches[i], ctx.forward_fn, ctx.spec.loss_fn, roots)

            loc = ctx.measure(keys.NONFINITE_LOCALISE.at(i), watched)
            title, lines = describe_localisation(loc)
            lines.insert(0, f"{len(sick)} of {len(batches)} training batches checked (their inputs finite) give "
                            f"non-finite values; on batch {i + 1} {symptom_text(symptoms[i])}")
            findings.append(self.finding(
                ID, Severity.ERROR, 0.95 if loc.origin is not None else 0.85, title=title, evidence=lines,
                fixes=tuple(dict.fromkeys(origin_fixes(loc.origin) + list(lookup(ID).fixes[:2]))),
                metrics=self._metrics(loc, len(sick), len(batches)), location=location_of(loc)))
        elif not any(s.sick for s in symptoms) and step_check:
            findings += self._after_step(ctx, batches, roots)
        return findings

    @staticmethod
    def _metrics(loc: Localisation, sick: int, checked: int) -> dict:
        origin = loc.origin
        return {"batches_nonfinite": sick, "batches_checked": checked,
                "loss": str(loc.loss_value) if loc.loss_value is not None else None,
                "phase": origin.phase if origin else "", "op": origin.op if origin else "",
                "module": display_path(origin.module_path) if origin and origin.module_path is not None else "",
                "user_line": origin.user_line if origin else "",
                "params_nonfinite_grad": len(loc.nonfinite_grads)}

    @staticmethod
    def _stepped(ctx, batches, lr_scale: float):
        """One optimiser step on a fresh model, then the next forward (memoised per scale)."""
        i, j = _step_pair(len(batches))

        def run():
            with isolated_rng(ctx.seed):
                model = ctx.fresh_model()
                return step_then_forward(model, ctx.make_optimizer(model), batches[i], batches[j], ctx.forward_fn,
                                         ctx.spec.loss_fn, ctx.spec.grad_clip_norm, lr_scale)

        return ctx.measure(keys.NONFINITE_AFTER_STEP if lr_scale == 1.0 else keys.NONFINITE_AFTER_SMALL_STEP, run)

    def _after_step(self, ctx, batches, roots):
        scale = float(ctx.config.get("numerics.step_lr_scale"))
        i, j = _step_pair(len(batches))
        first, second = batches[i], batches[j]
        clip = ctx.spec.grad_clip_norm
        full = self._stepped(ctx, batches, 1.0)
        if not full.sick or full.params_nonfinite or not math.isfinite(full.update_ratio):
            return []  # finite gradients stepped into non-finite weights: the step size overflowed (lr-too-high)
        # A step `scale` times the size of the first one relative to the weights (never larger
        # than `scale` times the learning rate): if even that breaks the loss, any update does.
        scale = scale * min(1.0, 1.0 / full.update_ratio) if full.update_ratio > 0 else scale
        small = self._stepped(ctx, batches, scale)
        if not small.sick:
            return []  # a smaller step avoids it: the learning rate's business, not a numerical bug

        def watched():
            with isolated_rng(ctx.seed):
                model = ctx.fresh_model()
                return step_then_localise(model, ctx.make_optimizer(model), first, second, ctx.forward_fn,
                                          ctx.spec.loss_fn, clip, scale, roots)

        loc = ctx.measure(keys.NONFINITE_LOCALISE.at("after_step"), watched)
        title, lines = describe_localisation(loc)
        lines.insert(0, f"the first batches are finite, but after one optimiser step the next loss is "
                        f"{full.loss_after}, and still {small.loss_after} with the learning rate scaled by {scale:.2g} "
                        f"(weights moved by {small.update_ratio:.2g} of their norm): any update breaks the computation")
        return [self.finding(
            ID, Severity.ERROR, 0.8, title=f"After one optimiser step: {title}",
            evidence=lines, fixes=tuple(dict.fromkeys(origin_fixes(loc.origin) + list(lookup(ID).fixes[:2]))),
            metrics={**self._metrics(loc, 0, len(batches)), "after_step": True, "lr_scale": scale},
            location=location_of(loc))]
