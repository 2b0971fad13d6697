"""The numerics check: where do NaN and Inf come from, if they appear?"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dldoctor.api import Check, Severity, Stage, keys, lookup
from dldoctor.api.measure import (
    DataNonFinite,
    Localisation,
    Origin,
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

ID = "numerical-instability"

_LOG = ("log", "log2", "log10", "log1p", "xlogy", "lgamma", "digamma")
_DIV = ("div", "divide", "true_divide", "truediv", "rtruediv", "rdiv", "reciprocal", "floor_divide", "fmod",
        "remainder")
_ROOT = ("sqrt", "rsqrt", "pow", "rpow", "norm", "cdist")
_EXP = ("exp", "exp2", "expm1", "sinh", "cosh", "mul", "rmul", "matmul", "mm", "bmm", "linear", "conv1d",
        "conv2d", "conv3d", "sum", "prod", "cumprod", "square", "addmm", "einsum")
_SOFTMAX = ("softmax", "log_softmax", "logsumexp", "scaled_dot_product_attention", "multi_head_attention_forward")
_TRIG = ("acos", "asin", "atanh", "acosh", "erfinv")


def op_family(op: str) -> str:
    """``log``, ``div``, ``root``, ``overflow``, ``softmax``, ``domain`` or ``other`` for an operation name.

    Backward nodes (``SqrtBackward0 (of torch.sqrt)``) are judged by the forward
    operation that created them.
    """
    if "(of " in op:
        op = op.split("(of ", 1)[1].rstrip(")")
    elif op.endswith(("Backward0", "Backward1")):
        op = op[: op.index("Backward")]
    name = op.rsplit(".", 1)[-1].strip("_").lower()
    if name.startswith("i") and name[1:] in _DIV + _EXP:  # in-place dunders: __itruediv__
        name = name[1:]
    for family, names in (("log", _LOG), ("div", _DIV), ("root", _ROOT), ("softmax", _SOFTMAX),
                          ("domain", _TRIG), ("overflow", _EXP)):
        if name in names or name.rstrip("_") in names:
            return family
    return "other"


def _kind_word(kind: str) -> str:
    return {"nan": "NaN", "inf": "Inf"}.get(kind, "NaN and Inf")


def _range_text(origin: Origin) -> str:
    parts = []
    for i, r in enumerate(origin.inputs[:2]):
        which = "its input" if len(origin.inputs) == 1 else ("its first input" if i == 0 else "its second input")
        bad = f", {r.nonfinite:,} non-finite" if r.nonfinite else ""
        parts.append(f"{which} {list(r.shape)} has finite values in [{r.min:.4g}, {r.max:.4g}], {r.zeros:,} exact "
                     f"zeros, {r.negatives:,} negative{bad}, of {r.numel:,}")
    return "; ".join(parts)


def origin_fixes(origin: Origin | None) -> list[str]:
    """Fixes for the operation that produced the first non-finite value, most specific first."""
    if origin is None:
        return []
    family = op_family(origin.op)
    line = f" (at {origin.user_line.split(': `')[0]})" if origin.user_line else ""
    negatives = any(r.negatives for r in origin.inputs[:1])
    if family == "log":
        fixes = [f"Do not take the log of a value that can reach 0{line}: use F.log_softmax / F.cross_entropy on "
                 "logits instead of torch.log(softmax(x)), F.logsigmoid / F.binary_cross_entropy_with_logits "
                 "instead of torch.log(sigmoid(x)), or clamp first: torch.log(x.clamp_min(1e-8))."]
        if negatives:
            fixes.append("The input of the log has negative values: if it comes from a layer (a variance, a rate), "
                         "make it positive by construction, e.g. F.softplus(raw) + 1e-6, or predict its log.")
        return fixes
    if family == "div":
        return [f"Keep the divisor away from zero{line}: x / (d + 1e-8) or d.clamp_min(1e-8); for a masked mean, "
                "divide by mask.sum(dim).clamp_min(1) and handle empty rows (zero-length sequences)."]
    if family == "root":
        if origin.phase == "backward":
            return [f"The derivative of sqrt (or of x ** p with p < 1, or of a norm) is infinite at 0{line}: add an "
                    "epsilon inside, torch.sqrt(x + 1e-8), or use torch.cdist / F.pairwise_distance / "
                    "torch.linalg.vector_norm, which handle zero distances (e.g. a sample's distance to itself)."]
        return [f"Clamp before the root{line}: torch.sqrt(x.clamp_min(0) + 1e-8); a variance computed as "
                "E[x^2] - E[x]^2 can come out slightly negative, prefer torch.var."]
    if family == "softmax":
        return ["A row of the softmax input is entirely -inf (every position masked, e.g. an empty or fully padded "
                "sequence): keep at least one unmasked position per row, drop empty samples, or mask with a large "
                "finite negative (torch.finfo(x.dtype).min) instead of -inf."]
    if family == "domain":
        return [f"Clamp the input into the function's domain{line}, e.g. torch.acos(x.clamp(-1 + 1e-7, 1 - 1e-7))."]
    if family == "overflow":
        return [f"The values overflow the float range{line}: use torch.logsumexp / torch.softmax instead of "
                "exp(x) / exp(x).sum(), subtract the maximum before exp, or keep inputs and weights at unit scale."]
    return []


def cause_text(origin: Origin) -> str:
    """What the operation's family and inputs say happened, in words ("" when unsure)."""
    family = op_family(origin.op)
    first = origin.inputs[0] if origin.inputs else None
    if family == "log" and first is not None:
        return ("a log of 0 is -inf and of a negative value NaN: its input had "
                f"{first.zeros:,} exact zeros and {first.negatives:,} negative values")
    if family == "div":
        divisor = origin.inputs[1] if len(origin.inputs) > 1 else first
        zeros = f": the divisor had {divisor.zeros:,} exact zeros" if divisor is not None else ""
        return f"a division by zero (0/0 is NaN, x/0 is Inf){zeros}"
    if family == "root":
        if origin.phase == "backward":
            return "the derivative of sqrt (or of a fractional power or a norm) is infinite at 0"
        return "the root of a negative value is NaN"
    if family == "softmax":
        return "a row of its input is entirely -inf (every position masked), and softmax of such a row is 0/0"
    if family == "overflow":
        return "the result exceeds the largest float (about 3.4e38 in float32, 65504 in float16)"
    if family == "domain":
        return "its input left the function's domain"
    return ""


def where_label(origin: Origin) -> str:
    """Where the operation ran, in words."""
    if origin.module_path is None:
        return {"spec forward": "the spec's forward function, outside the model",
                "loss": "the loss function"}.get(origin.created_in or origin.phase, "outside the model")
    label = f"{display_path(origin.module_path)} ({origin.module_type})"
    if not origin.module_leaf:
        label += "'s own forward code (not one of its sub-layers)"
    return label


def location_of(loc: Localisation) -> str:
    origin = loc.origin
    if origin is not None:
        if origin.module_path is not None:
            return display_path(origin.module_path)
        phase = origin.created_in if origin.phase == "backward" else origin.phase
        return phase or "backward"
    if loc.first_module is not None:
        return display_path(loc.first_module[0])
    if loc.outputs_nonfinite == 0 and loc.loss_value is not None and not math.isfinite(loc.loss_value):
        return "loss"
    return "backward" if loc.nonfinite_grads else "model"


def describe_localisation(loc: Localisation) -> tuple[str, list[str]]:
    """(title, evidence lines) for a watched step that showed non-finite values."""
    origin = loc.origin
    lines = []
    if origin is not None and origin.phase != "backward":
        at = f" at {origin.user_line}" if origin.user_line else ""
        source = "inputs without NaN" if any(r.nonfinite for r in origin.inputs) else "finite inputs"
        lines.append(f"the first operation that makes {_kind_word(origin.kind)} from {source} is {origin.op}"
                     f"{at}, in {where_label(origin)}" + (f"; {_range_text(origin)}" if origin.inputs else ""))
        if cause_text(origin):
            lines.append(cause_text(origin))
        if origin.phase == "loss":
            lines.append("the model's outputs are finite: the loss computation produces the non-finite value")
        where = location_of(loc) + (f" ({origin.module_type})" if origin.module_path is not None else "")
        title = f"{_kind_word(origin.kind)} first appears in {where}: {origin.op}"
    elif origin is not None:
        at = f" at {origin.user_line}" if origin.user_line else ""
        lines.append(f"forward pass and loss are finite (loss = {loc.loss_value:.4g}), but backward produces "
                     f"{_kind_word(origin.kind)}: {origin.op} turns a finite gradient into a non-finite one; the "
                     f"forward operation ran{at} in {where_label(origin)}")
        if cause_text(origin):
            lines.append(cause_text(origin))
        title = f"Backward produces {_kind_word(origin.kind)} in {origin.op.split(' ')[0]}"
    else:
        title = f"NaN/Inf appear in {location_of(loc)}"
    if loc.first_module is not None:
        path, kind = loc.first_module
        lines.append(f"first module (in execution order) whose output is non-finite while its input was finite: "
                     f"{display_path(path)} ({kind})")
    if loc.nonfinite_grads:
        lines.append(f"{len(loc.nonfinite_grads)} parameter tensors get non-finite gradients, the first "
                     f"{display_path(loc.nonfinite_grads[0])}")
    return title, lines


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
