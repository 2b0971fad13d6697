"""The loss-inputs check: is the output in the space the loss expects (logits, probabilities)?"""

from __future__ import annotations

import dataclasses
import math

from dldoctor.api import ELEMENTWISE, Check, Finding, Judgement, Severity, Stage
from dldoctor.api.measure import (
    ForwardTrace,
    OutputSummary,
    display_path,
    loss_kind,
    measure_loss,
    trained_outputs,
)
from dldoctor.api.read import output_producer

ID = "loss-input-probabilities"

#: Autograd operations (and module types) that squash values into [0, 1].
SQUASH_OPS = {"Sigmoid", "Softmax", "Hardsigmoid"}
LOW_PRECISION = {"float16", "bfloat16"}


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The ``loss_inputs`` config section."""

    prob_row_tolerance: float
    low_precision_tolerance: float
    logits_min_exp_row_dev: float
    min_values_for_range: int


def judge(kind: str, summary: OutputSummary, width: int, ndim: int, op: str, dtype: str, numel: int,
          t: Thresholds, loss: str = "") -> Judgement | None:
    """Judge the model output against the loss kind; None when they fit (or nothing is decisive).

    The judgement's ``case`` says what the output is and why the loss cannot use it:
    ``probs-into-logits`` (softmax output into a loss that applies softmax itself),
    ``squashed-into-logits`` (sigmoid output into one), ``probs-into-log-probs`` and
    ``logits-into-log-probs``.

    Args:
        kind: what the loss expects (a kind of ``core.loss_kinds``).
        summary: the traced output's value summary.
        width: size of dim 1 of the output (classes), 1 when the output is 1-D.
        ndim: the output's number of dimensions.
        op: the autograd operation that produced the output.
        dtype: the output's dtype (low precision widens the tolerance).
        numel: number of output values.
        loss: the loss's name (KL divergence is judged on 2-D outputs only: its
            distribution dimension is not necessarily dim 1).
    """
    tol = t.low_precision_tolerance if dtype in LOW_PRECISION else t.prob_row_tolerance
    finite = summary.frac_nonfinite == 0.0 and summary.std == summary.std
    if not finite:
        return None
    prob_rows = (width >= 2 and summary.row_sum_dev is not None and summary.min >= 0.0
                 and summary.row_sum_dev <= tol)
    logprob_rows = (width >= 2 and summary.exp_row_sum_dev is not None and summary.max <= tol
                    and summary.exp_row_sum_dev <= tol)
    not_logprob = (width >= 2 and summary.exp_row_sum_dev is not None
                   and summary.exp_row_sum_dev > t.logits_min_exp_row_dev)
    in01 = summary.frac_in_01 == 1.0 and summary.std > 0.0
    strictly01 = in01 and summary.min > 0.0 and summary.max < 1.0
    squashed = op in SQUASH_OPS
    if kind == "logits":
        if prob_rows:
            return Judgement(ID, Severity.ERROR, 0.95, case="probs-into-logits")
        if in01 and squashed:
            return Judgement(ID, Severity.ERROR, 0.85, case="squashed-into-logits")
    elif kind == "binary-logits":
        if in01 and squashed:
            return Judgement(ID, Severity.ERROR, 0.95, case="squashed-into-logits")
        if strictly01 and numel >= t.min_values_for_range:
            return Judgement(ID, Severity.WARNING, 0.6, case="squashed-into-logits")
    elif kind == "log-probs":
        if loss in ("KLDivLoss", "kl_div") and ndim != 2:
            return None
        if logprob_rows:
            return None
        if prob_rows:
            return Judgement(ID, Severity.ERROR, 0.95, case="probs-into-log-probs")
        if not_logprob:
            return Judgement(ID, Severity.ERROR, 0.9, case="logits-into-log-probs")
    return None


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


class LossInputsCheck(Check):
    """The model's output is in the space its loss expects (logits, probabilities, log-probabilities).

    Reads the traced output's values (rows that sum to 1, values inside [0, 1], rows
    whose exp sums to 1) and the operation that produced it, and compares them with
    what the loss expects: CrossEntropyLoss and BCEWithLogitsLoss want logits,
    NLLLoss and KLDivLoss log-probabilities. A loss known by neither module type nor
    function name is recognised by reproducing its value with the standard losses.
    """

    name = "loss-inputs"
    stage = Stage.RUN
    order = 20
    requires = ("forward_pass",)
    emits = (ID,)

    def run(self, ctx):
        trace = ctx.forward_trace()
        summary = trace.output_summary
        if summary is None or len(trace.outputs) != 1:
            return []
        # The probe (one more forward pass) is only paid for when the loss's name says
        # nothing, or when the values lie in [0, 1] and the operation behind them matters.
        kind, source = loss_kind(trace.loss_name)
        if not kind:
            kind, source = loss_kind(trace.loss_name, measure_loss(ctx).matches)
        if not kind or kind == "probs" or kind in ELEMENTWISE:
            return []
        op = measure_loss(ctx).output_op if summary.frac_in_01 == 1.0 else ""
        shape = trace.outputs[0].shape
        width = shape[1] if len(shape) >= 2 else 1
        t = Thresholds(**{k: ctx.config.get(f"loss_inputs.{k}") for k in (
            "prob_row_tolerance", "low_precision_tolerance", "logits_min_exp_row_dev", "min_values_for_range")})
        verdict = judge(kind, summary, width, len(shape), op, trace.outputs[0].dtype, math.prod(shape), t,
                        trace.loss_name)
        if verdict is None:
            return []
        if not op:
            op = measure_loss(ctx).output_op
        trained = None
        if verdict.case == "squashed-into-logits" and op not in SQUASH_OPS:
            # Only the range says "squashed": confirm that training cannot move the outputs out of it.
            after = trained_outputs(ctx, int(ctx.config.get("loss_inputs.confirm_steps")))
            if after is None or after.minimum < 0.0 or after.maximum > 1.0:
                return []
            trained = (after.steps, after.minimum, after.maximum)
        confidence = verdict.confidence * (0.95 if source == "measured" else 1.0)
        return [self._finding(verdict, confidence, trace, summary, op, kind, source, width, trained)]

    def _finding(self, verdict: Judgement, confidence: float, trace: ForwardTrace, s: OutputSummary, op: str,
                 kind: str, source: str, width: int, trained: tuple[int, float, float] | None = None) -> Finding:
        shape = trace.outputs[0].shape_str
        producer = output_producer(trace)
        where = display_path(producer.path) if producer is not None else "model"
        module = f"{where} ({producer.type_name})" if producer is not None else ""
        squash_module = producer is not None and producer.type_name in SQUASH_OPS | {"LogSoftmax"}
        loss = trace.loss_name or "the loss"
        if source == "measured":
            named = trace.loss_name if trace.loss_name not in ("", "<lambda>") else "the loss function"
            loss = f"{named} (= {_measured_as(kind)}, measured)"
        last = (f"the output comes from {module}" if producer is not None
                else f"the output's last operation is {op or 'unknown'} (applied in forward)")
        metrics = {"output_min": s.min, "output_max": s.max, "frac_in_01": s.frac_in_01, "output_op": op,
                   "classes": width, "loss_kind": kind, "loss_kind_source": source, "case": verdict.case}
        if s.row_sum_dev is not None:
            metrics["row_sum_dev"] = s.row_sum_dev
        if s.exp_row_sum_dev is not None:
            metrics["exp_row_sum_dev"] = s.exp_row_sum_dev
        if trace.loss_value is not None:
            metrics["loss_at_init"] = trace.loss_value
        evidence: list[str] = []
        fixes: list[str] = []
        if verdict.case == "probs-into-logits":
            floor = math.log(1 + (width - 1) / math.e)
            metrics["loss_floor"] = floor
            title = f"Softmax probabilities reach {loss}, which expects logits"
            evidence += [
                f"every row of the output {shape} is a probability distribution: values in "
                f"[{_fmt(s.min)}, {_fmt(s.max)}], rows sum to 1 (mean |sum - 1| = {_fmt(s.row_sum_dev)})",
                last,
                f"{loss} applies log-softmax itself, on top of the model's softmax: with inputs squashed into "
                f"[0, 1] even a perfect prediction cannot push the loss below {floor:.2f} "
                f"(chance level is ln {width} = {math.log(width):.2f})",
            ]
            fixes.append(f"Remove the final {module} and return its input (the logits)" if squash_module
                         else "Return the logits from forward: drop the softmax applied at its end")
            fixes[-1] += f"; {loss.split(' (')[0]} applies log-softmax itself."
            fixes += ["If you need probabilities at inference, apply torch.softmax outside the loss "
                      "(e.g. in a predict() method).",
                      "Or end the model with nn.LogSoftmax(dim=1) and use nn.NLLLoss."]
        elif verdict.case == "squashed-into-logits":
            binary = kind == "binary-logits"
            what = {"Softmax": "Softmax outputs", "Sigmoid": "Sigmoid outputs", "Hardsigmoid": "Hardsigmoid outputs"}
            title = f"{what.get(op, 'Outputs confined to [0, 1]')} reach {loss}, which expects logits"
            evidence.append(f"every value of the output {shape} lies in [0, 1] "
                            f"(min {_fmt(s.min)}, max {_fmt(s.max)})")
            if op in SQUASH_OPS:
                evidence.append(last)
            else:
                evidence.append(f"{last}; no sigmoid is visible, but centred logits would fall outside [0, 1] "
                                f"about half the time")
                if trained is not None:
                    evidence.append(f"after {trained[0]} steps of the optimizer on one batch, the outputs still lie "
                                    f"in [{_fmt(trained[1])}, {_fmt(trained[2])}]: something bounds them")
                    metrics.update(trained_min=trained[1], trained_max=trained[2])
            if binary:
                evidence.append(f"{loss} applies the sigmoid itself: on inputs in [0, 1] its loss cannot go below "
                                f"0.31 for a positive target or 0.69 (ln 2) for a negative one, so the model "
                                f"cannot become confident")
                fixes.append((f"Remove the final {module}" if squash_module else
                              "Return the logits from forward: drop the sigmoid applied at its end")
                             + f"; {loss.split(' (')[0]} applies the sigmoid itself.")
                fixes += ["Or keep the sigmoid and use nn.BCELoss (less numerically stable).",
                          "Apply torch.sigmoid only at inference (e.g. in a predict() method)."]
            else:
                evidence.append(f"{loss} applies log-softmax itself: logits confined to [0, 1] let the "
                                f"predicted probabilities differ by at most a factor e, so it cannot become "
                                f"confident")
                fixes.append((f"Remove the final {module}" if squash_module else
                              f"Return the logits from forward: drop the {op.lower() or 'squashing'} applied at "
                              f"its end") + f"; {loss.split(' (')[0]} applies log-softmax itself.")
                fixes.append("Apply torch.softmax only at inference (e.g. in a predict() method).")
        elif verdict.case == "probs-into-log-probs":
            title = f"Probabilities reach {loss}, which expects log-probabilities"
            evidence += [
                f"every row of the output {shape} is a probability distribution: values in "
                f"[{_fmt(s.min)}, {_fmt(s.max)}], rows sum to 1 (mean |sum - 1| = {_fmt(s.row_sum_dev)})",
                last,
                f"{loss} takes the target entry as a log-probability, so on probabilities it computes "
                f"-mean(p[target]), which lies in [-1, 0]: no log, so confident mistakes are barely penalised",
            ]
            fixes.append((f"Replace {module} with nn.LogSoftmax(dim=1)" if squash_module
                          else "Return torch.log_softmax(logits, dim=1) from forward instead of the softmax")
                         + f" for {loss.split(' (')[0]}.")
            fixes.append("Or return the logits and use nn.CrossEntropyLoss (log-softmax + NLL in one, stable).")
        else:  # logits-into-log-probs
            title = f"Raw scores reach {loss}, which expects log-probabilities"
            evidence += [
                f"the output {shape} is not log-probabilities: exp(output) rows should sum to 1 but are off by "
                f"{_fmt(s.exp_row_sum_dev)} on average (values in [{_fmt(s.min)}, {_fmt(s.max)}])",
                last,
                f"{loss} only picks the target entry and negates it, so on unnormalised scores the loss is "
                f"unbounded below: it falls by inflating the target score, not by learning"
                + (f" (loss at init: {trace.loss_value:.3g})" if trace.loss_value is not None else ""),
            ]
            if producer is not None and where.startswith("model["):
                fixes.append(f"Add nn.LogSoftmax(dim=1) after {module} for {loss.split(' (')[0]}.")
            else:
                fixes.append("Return torch.log_softmax(scores, dim=1) from forward"
                             + (f" (scores = the output of {module})" if producer is not None else "")
                             + f" for {loss.split(' (')[0]}.")
            fixes.append("Or keep the logits and use nn.CrossEntropyLoss, which applies log-softmax itself.")
        return self.finding(ID, verdict.severity, confidence, title=title,
                            evidence=evidence, fixes=fixes, metrics=metrics, location=where)


def _measured_as(kind: str) -> str:
    return {"logits": "F.cross_entropy", "binary-logits": "F.binary_cross_entropy_with_logits",
            "log-probs": "F.nll_loss"}.get(kind, kind)
