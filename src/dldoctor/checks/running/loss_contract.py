"""The loss-contract check: do the targets fit what the loss takes, and does the loss point the right way?"""

from __future__ import annotations

from dldoctor.api import Check, Judgement, Stage
from dldoctor.api.measure import loss_kind, measure_labels, measure_loss
from dldoctor.api.read import loss_contract


class LossContractCheck(Check):
    """The loss gets targets it can read, and a perfect prediction is where it is lowest.

    Two contracts that no other check holds. Float targets of the output's shape are
    read as distributions by ``CrossEntropyLoss`` (class probabilities) and
    ``KLDivLoss`` (probabilities, or log-probabilities with ``log_target=True``): each
    row of the cached training batches must be one. And any loss whose inputs live in
    the targets' space (an error, a similarity, a correlation, hand-written or not)
    must be lower at a perfect prediction (outputs equal to the targets) than at the
    model's outputs: a cosine similarity or a correlation returned as the loss, without
    its minus sign, is maximised by the training that minimises it. (Class indices,
    binary targets and output shapes are the label-range, loss-inputs and
    loss-broadcast checks'.)
    """

    name = "loss-contract"
    stage = Stage.RUN
    order = 21
    requires = ("forward_pass",)
    emits = ("label-out-of-range", "loss-sign-flipped")

    def run(self, ctx):
        trace = ctx.forward_trace()
        if len(trace.outputs) != 1 or len(trace.targets) != 1:
            return []
        cfg = ctx.config.section("loss_contract")
        out, tgt = trace.outputs[0], trace.targets[0]
        name = loss_contract.torch_loss_name(ctx.spec.loss_fn) or trace.loss_name
        verdicts: list[Judgement] = []
        if out.shape == tgt.shape and tgt.is_floating and (
                name in loss_contract.CROSS_ENTROPY or name in loss_contract.KL_DIV):
            rows = measure_labels(ctx).rows
            log_target = bool(getattr(ctx.spec.loss_fn, "log_target", False))
            if rows is not None:
                found = loss_contract.judge_distributions(name, rows, log_target, float(cfg["row_sum_tolerance"]))
                verdicts += [found] if found is not None else []
        if tgt.is_floating and not verdicts:
            probe = measure_loss(ctx)
            kind, _ = loss_kind(trace.loss_name, probe.matches)
            if not kind:
                kind, _ = loss_kind(name)
            found = loss_contract.judge_sign(kind, probe, float(cfg["stationary_rel"]), float(cfg["sign_margin"]))
            verdicts += [found] if found is not None else []
        return [self.judged(v) for v in verdicts]
