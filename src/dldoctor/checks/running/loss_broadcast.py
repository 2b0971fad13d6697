"""The loss-broadcast check: do output and target shapes broadcast inside an element-wise loss?"""

from __future__ import annotations

import math

import torch

from dldoctor.api import ELEMENTWISE as ELEMENTWISE_KINDS
from dldoctor.api import LOSSES, Check, Judgement, Severity, Stage
from dldoctor.api.measure import LossProbe, measure_loss

ID = "loss-broadcast"

#: Element-wise losses by name (BCE and BCE-with-logits raise on a size mismatch, so
#: a run that got this far with them has equal sizes; they are listed for completeness).
ELEMENTWISE = {name for name, loss in LOSSES.items() if loss.kind in ELEMENTWISE_KINDS} | {
    "BCELoss", "binary_cross_entropy", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits"}


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(torch.broadcast_shapes(torch.Size(a), torch.Size(b)))
    except RuntimeError:
        return None


def judge(out_shape: tuple[int, ...], tgt_shape: tuple[int, ...], elementwise_by_name: bool,
          mixing: float | None, prefers_mean: bool, mixing_threshold: float) -> Judgement | None:
    """Judge the shapes the loss got; None when nothing broadcasts (or the loss does not).

    The judgement's ``case`` is ``outer`` (the broadcast shape is larger than both:
    every output meets every target) or ``expand`` (one side is repeated along the
    other's dimension); ``metrics["broadcast"]`` is the broadcast shape.

    Args:
        out_shape, tgt_shape: the output and target shapes.
        elementwise_by_name: the loss is a known element-wise loss (MSE, L1, ...).
        mixing: measured relative change of sample 0's gradient when the other
            samples' targets move (None when not measured).
        prefers_mean: the loss is lower at the target mean than at a perfect
            prediction (measured).
        mixing_threshold: smallest ``mixing`` that shows samples are coupled.
    """
    if out_shape == tgt_shape:
        return None
    shape = broadcast_shape(out_shape, tgt_shape)
    if shape is None:
        return None
    n = math.prod(shape)
    n_out, n_tgt = math.prod(out_shape), math.prod(tgt_shape)
    coupled = mixing is not None and mixing > mixing_threshold
    if n > max(n_out, n_tgt):
        if elementwise_by_name:
            return Judgement(ID, Severity.ERROR, 0.95, metrics={"broadcast": shape}, case="outer")
        if coupled or prefers_mean:
            return Judgement(ID, Severity.ERROR, 0.9 if coupled and prefers_mean else 0.8, metrics={"broadcast": shape},
                             case="outer")
        return None
    if n > min(n_out, n_tgt) and elementwise_by_name and len(out_shape) >= 1 and len(tgt_shape) >= 1:
        # One side is repeated along the other (e.g. [N, 3] outputs against [N, 1] targets):
        # samples stay apart, but several outputs are fitted to one target (or the reverse).
        return Judgement(ID, Severity.WARNING, 0.6, metrics={"broadcast": shape}, case="expand")
    return None


def _shape(s: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, s))}]"


def fixes_for(out_shape: tuple[int, ...], tgt_shape: tuple[int, ...]) -> list[str]:
    """The concrete reshapes that make the shapes equal, most likely first."""
    fixes: list[str] = []
    out, tgt = list(out_shape), list(tgt_shape)
    if len(out) == len(tgt) + 1 and out[-1] == 1 and out[:-1] == tgt:
        fixes += [f"Squeeze the output before the loss: loss_fn(outputs.squeeze({len(out) - 1}), targets) "
                  f"({_shape(out_shape)} -> {_shape(tgt_shape)}).",
                  f"Or give the targets the output's shape: targets.view(-1, 1) / targets.unsqueeze({len(tgt)})."]
    elif len(tgt) == len(out) + 1 and tgt[-1] == 1 and tgt[:-1] == out:
        fixes += [f"Flatten the targets to the output's shape: targets.view(-1) / targets.squeeze({len(tgt) - 1}) "
                  f"({_shape(tgt_shape)} -> {_shape(out_shape)}).",
                  f"Or give the output the targets' shape: outputs.unsqueeze({len(out)})."]
    elif math.prod(out_shape) == math.prod(tgt_shape):
        fixes.append(f"Make the shapes equal before the loss: targets.view_as(outputs) "
                     f"({_shape(tgt_shape)} -> {_shape(out_shape)}).")
    elif len(out) == len(tgt) >= 2 and out[:-1] == tgt[:-1] and 1 in (out[-1], tgt[-1]):
        fixes += [f"Give the last layer as many outputs as there are targets per sample ({tgt[-1]}, now "
                  f"{out[-1]}), or build the targets with {out[-1]} columns.",]
    else:
        fixes.append(f"Make the output and the targets the same shape before the loss (now {_shape(out_shape)} "
                     f"and {_shape(tgt_shape)}): check the width of the last layer and how targets are built.")
    fixes.append("Assert it in the training step so it cannot come back: assert outputs.shape == targets.shape.")
    return fixes


class LossBroadcastCheck(Check):
    """Output and target shapes match inside element-wise losses (no silent broadcasting).

    Compares the shapes the loss got. A known element-wise loss (MSE, L1, Smooth-L1,
    Huber) with shapes that broadcast to more elements than either compares every
    output with every target. Any other loss (a lambda, a custom function) is
    judged by measurement: whether the gradient on one sample's output moves when
    the *other* samples' targets move, and whether the loss prefers predicting the
    target mean to predicting the targets exactly.
    """

    name = "loss-broadcast"
    stage = Stage.RUN
    order = 22
    requires = ("forward_pass",)
    emits = (ID,)

    def run(self, ctx):
        trace = ctx.forward_trace()
        if len(trace.outputs) != 1 or len(trace.targets) != 1:
            return []
        out_shape, tgt_shape = trace.outputs[0].shape, trace.targets[0].shape
        if out_shape == tgt_shape or broadcast_shape(out_shape, tgt_shape) is None:
            return []
        by_name = trace.loss_name in ELEMENTWISE
        probe = measure_loss(ctx)
        prefers_mean = (probe.loss_at_perfect is not None and probe.loss_at_mean is not None
                        and probe.loss_at_perfect > probe.loss_at_mean)
        verdict = judge(out_shape, tgt_shape, by_name, probe.target_mixing, prefers_mean,
                        float(ctx.config.get("loss_broadcast.mixing_threshold")))
        if verdict is None:
            return []
        return [self._finding(verdict, trace.loss_name, out_shape, tgt_shape, probe, by_name, trace.loss_value)]

    def _finding(self, v: Judgement, name: str, out_shape, tgt_shape, probe: LossProbe, by_name: bool, value):
        loss = name if by_name else f"the loss ({name or 'a custom function'})"
        broadcast = v.metrics["broadcast"]
        n_out, n_tgt, n = math.prod(out_shape), math.prod(tgt_shape), math.prod(broadcast)
        if v.case == "outer":
            evidence = [f"outputs {_shape(out_shape)} and targets {_shape(tgt_shape)} broadcast to "
                        f"{_shape(broadcast)} inside {loss}: {n} differences instead of {max(n_out, n_tgt)}"]
        else:
            small, big = ("targets", "outputs") if n_tgt < n_out else ("outputs", "targets")
            evidence = [f"outputs {_shape(out_shape)} and targets {_shape(tgt_shape)} broadcast to "
                        f"{_shape(broadcast)} inside {loss}: the {small} are repeated {n // min(n_out, n_tgt)} "
                        f"times to match the {big}"]
        metrics = {"output_shape": _shape(out_shape), "target_shape": _shape(tgt_shape),
                   "broadcast_shape": _shape(broadcast), "broadcast_numel": n, "case": v.case}
        subject = loss[:1].upper() + loss[1:]
        if v.case == "outer":
            title = (f"{subject} compares every output with every target: {_shape(out_shape)} vs "
                     f"{_shape(tgt_shape)} broadcast to {_shape(broadcast)}")
            evidence.append("so each prediction is pulled towards all targets of the batch, and the best the "
                            "model can do is predict their mean for every sample")
        else:
            title = f"{subject} repeats one side to match the other: {_shape(out_shape)} vs {_shape(tgt_shape)}"
            k = n // min(n_out, n_tgt)
            evidence.append(f"each target is fitted by {k} outputs at once" if n_tgt < n_out else
                            f"each output is fitted to {k} different targets at once, so it can only learn their "
                            f"mean")
        if probe.target_mixing is not None:
            metrics["target_mixing"] = probe.target_mixing
            if probe.target_mixing > 0:
                evidence.append(f"measured: moving the other samples' targets changes the gradient on sample 0's "
                                f"output by {probe.target_mixing:.0%} (a per-sample loss leaves it unchanged)")
        if probe.loss_at_perfect is not None and probe.loss_at_mean is not None:
            metrics["loss_at_perfect"] = probe.loss_at_perfect
            metrics["loss_at_mean"] = probe.loss_at_mean
            if probe.loss_at_perfect > probe.loss_at_mean:
                evidence.append(f"measured on the first batch: predicting every target exactly gives loss "
                                f"{probe.loss_at_perfect:.3g}, predicting the batch mean for all gives "
                                f"{probe.loss_at_mean:.3g}: the loss rewards the mean over the truth")
        if probe.target_var is not None:
            metrics["target_var"] = probe.target_var
        if value is not None:
            metrics["loss_at_init"] = value
        return self.finding(ID, v.severity, v.confidence, title=title, evidence=evidence,
                            fixes=fixes_for(out_shape, tgt_shape), metrics=metrics, location="loss")
