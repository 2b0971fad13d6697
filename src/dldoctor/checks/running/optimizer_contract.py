"""The optimizer-contract check: zero_grad() clears every gradient, and a step goes downhill."""

from __future__ import annotations

import math

from dldoctor.api import Check, Judgement, Severity, Stage, keys
from dldoctor.api.measure import OptimizerContract, code_location, measure_optimizer_contract

STALE = "stale-gradients"
ASCENT = "loss-sign-flipped"


def _listed(names: tuple[str, ...] | list[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _where(contract: OptimizerContract, method: str, factory: str) -> str:
    """The user's line to blame: the method they wrote, else their class, else the factory."""
    own = contract.zero_grad_location if method == "zero_grad" else contract.step_location
    return own or contract.class_location or factory or "optimizer"


def judge_clearing(contract: OptimizerContract, factory: str, limit: int) -> Judgement | None:
    """Gradients that ``zero_grad()`` leaves behind, in any param group."""
    read = [g for g in contract.clearing if g.tensors]
    left = [g for g in read if g.left_tensors]
    if not left:
        return None
    values = sum(g.values for g in read)
    left_values = sum(g.left_values for g in left)
    share = left_values / values if values else 0.0
    n_groups = len(contract.clearing)
    evidence = [f"on a copy of the model: backward(), {contract.optimizer}.step(), then {contract.optimizer}."
                f"zero_grad(): {sum(g.left_tensors for g in left)} of {sum(g.tensors for g in read)} parameter "
                f"tensors that had a gradient still hold it, non-zero ({left_values:,} of {values:,} values, "
                f"{share:.0%}); the next backward() adds to it, so every step applies the sum of all gradients "
                "so far"]
    if n_groups > 1:
        for g in contract.clearing:
            state = (f"{g.left_tensors} of {g.tensors} tensors left uncleared ({g.left_values:,} of {g.values:,} "
                     f"values): {_listed(list(g.left_names), limit)}" if g.left_tensors else "cleared")
            evidence.append(f"param group {g.index}: {state}")
    else:
        evidence.append("uncleared: " + _listed(list(left[0].left_names), limit))
    where = _where(contract, "zero_grad", factory)
    if contract.zero_grad_location:
        evidence.append(f"{contract.optimizer}.zero_grad() is defined at {contract.zero_grad_location}")
    fixes = [f"In {contract.optimizer}.zero_grad(), clear every parameter of every param group: set p.grad = None "
             "(or p.grad.zero_() when set_to_none=False), or call super().zero_grad(set_to_none).",
             "p.grad.detach_() or p.grad.requires_grad_(False) do not clear a gradient: they keep its values."]
    title = (f"{contract.optimizer}.zero_grad() leaves the gradients of "
             + (f"param group{'s' if len(left) > 1 else ''} {', '.join(str(g.index) for g in left)} in place"
                if len(left) < len(read) else "every parameter in place")
             + ": each step applies the sum of all earlier gradients")
    return Judgement(STALE, Severity.ERROR, 0.9, title, tuple(evidence), tuple(fixes),
                     {"uncleared_tensors": sum(g.left_tensors for g in left), "uncleared_values": left_values,
                      "uncleared_fraction": round(share, 4), "groups_uncleared": len(left), "groups": n_groups},
                     where)


def judge_step(contract: OptimizerContract, factory: str, descent_cosine: float) -> Judgement | None:
    """A first step that goes uphill while a plain gradient step of the same length goes down."""
    step = contract.first_step
    if step is None or step.cosine is None or not all(
            math.isfinite(v) for v in (step.loss_before, step.loss_after, step.reference_after)):
        return None
    ascends = step.cosine <= descent_cosine and step.loss_after > step.loss_before
    if not ascends or not step.reference_after < step.loss_before:
        return None
    evidence = [
        f"on a copy of the model, one {contract.optimizer}.step() after backward() on the first batch moved the "
        f"parameters at cosine {step.cosine:+.3f} to the negative gradient (a descent step has a positive "
        "cosine: every first-order optimiser's first step is -D @ grad with D positive)",
        f"the loss on the same batch rose from {step.loss_before:.5g} to {step.loss_after:.5g} after that step, "
        f"while a plain gradient step of the same length (p -= {step.reference_lr:.3g} * p.grad) lowered it to "
        f"{step.reference_after:.5g}",
    ]
    if step.decay_off:
        evidence.append("weight decay was set to 0 for this step, so it is not what moved the weights")
    fixes = []
    if contract.maximize:
        evidence.append("the optimiser's param groups have maximize=True")
        fixes.append("Remove maximize=True from the optimiser: it turns descent into ascent.")
    if contract.step_location:
        evidence.append(f"{contract.optimizer}.step() is defined at {contract.step_location}")
        fixes.append(f"In {contract.optimizer}.step(), subtract the update: p.add_(update, alpha=-lr) "
                     "(p -= lr * grad), not p.add_(grad, alpha=lr).")
    fixes.append("Compare one step with torch.optim.SGD(params, lr=small): the loss on the same batch must fall.")
    return Judgement(ASCENT, Severity.ERROR, 0.9,
                     f"{contract.optimizer}.step() moves the parameters uphill: the loss rises after each step",
                     tuple(evidence), tuple(fixes),
                     {"cosine_to_descent": round(step.cosine, 4), "loss_before": step.loss_before,
                      "loss_after": step.loss_after, "reference_after": step.reference_after},
                     _where(contract, "step", factory))


class OptimizerContractCheck(Check):
    """The optimiser's zero_grad() clears every gradient and its first step goes downhill.

    On a copy of the model, runs backward() on the first batch, one step() of the spec's
    optimiser and its zero_grad(): reports gradients that zero_grad() leaves in any param
    group (stale-gradients), and a first step that points away from the negative gradient
    and raises the loss on that batch while a plain gradient step of the same length
    lowers it (loss-sign-flipped). Cost: three forwards and two backwards.
    """

    name = "optimizer-contract"
    stage = Stage.RUN
    order = 22
    requires = ("forward_pass",)
    emits = (STALE, ASCENT)

    def run(self, ctx):
        def measure():
            return measure_optimizer_contract(ctx.fresh_model, ctx.make_optimizer, ctx.first_batch("train"),
                                              ctx.forward_fn, ctx.spec.loss_fn, ctx.seed, ctx.user_roots)

        contract = ctx.measure(keys.OPTIMIZER_CONTRACT, measure)
        factory = code_location(ctx.spec.optimizer, ctx.user_roots)
        verdicts = [judge_clearing(contract, factory, int(ctx.config.get("optimizer_contract.max_listed"))),
                    judge_step(contract, factory, float(ctx.config.get("optimizer_contract.descent_cosine")))]
        return [self.judged(v) for v in verdicts if v is not None]
