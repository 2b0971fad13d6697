"""Script mode: does the user's own loop train in train mode and evaluate in eval mode?"""

from __future__ import annotations

from dldoctor.api import Check, Judgement, Severity, Stage, WatchedLoop


def judge_mode(loop: WatchedLoop, min_share: float) -> Judgement | None:
    """Training steps in eval mode, or evaluation passes in training mode, for a model whose
    dropout or batch-norm layers behave differently in the two (otherwise the mode is moot)."""
    if not loop.dropout_or_norm:
        return None
    steps = [s for s in loop.steps if s.optimizer == 0 and s.training is not None]
    eval_steps = [s for s in steps if s.training is False]
    name = loop.model_name or "the model"
    if eval_steps:
        # Either most steps, or every step after the first evaluation pass (model.eval() in the
        # validation loop, and no model.train() when the next epoch starts).
        after = loop.no_grad_passes[0].after_step if loop.no_grad_passes else None
        later = [s for s in steps if after is not None and s.index >= after]
        left_in_eval = bool(later) and all(s.training is False for s in later) and len(later) >= 2
        if left_in_eval or len(eval_steps) >= max(2, min_share * len(steps)):
            first = eval_steps[0].index
            if left_in_eval and first >= (after or 0):
                cause = (f"the steps ran in train mode until the first evaluation pass (after step {after}), and "
                         "in eval mode from then on: the evaluation loop calls model.eval() and the next epoch "
                         "does not call model.train()")
                fix = "Call model.train() at the start of every epoch (before the training loop), not only once."
            else:
                cause = f"{name} was in eval mode from step {first} on"
                fix = "Call model.train() before the training loop (and model.eval() only for evaluation)."
            return Judgement(
                "wrong-mode", Severity.ERROR, 0.9,
                f"{len(eval_steps)} of {len(steps)} watched training steps ran {name} in eval mode",
                (cause, f"{name} has dropout or batch-norm layers: in eval mode dropout is off and batch norm "
                        "uses its running statistics, so training does not regularise or normalise as designed"),
                (fix,), {"eval_steps": len(eval_steps), "steps": len(steps)}, loop.step_line or "loop")
    calls = sum(p.calls for p in loop.no_grad_passes)
    training = sum(p.training for p in loop.no_grad_passes)
    if calls >= 2 and training >= min_share * calls:
        return Judgement(
            "wrong-mode", Severity.WARNING, 0.75,
            f"Evaluation passes ran {name} in training mode",
            (f"{training} of {calls} forward calls of {name} in evaluation passes (under no_grad, or on "
             f"batches of a loader other than the training one) were in training mode: dropout "
             "was active and batch norm used (and updated) the evaluation batches' statistics, so the "
             "validation numbers are noisy and biased",),
            ("Call model.eval() before the evaluation loop, and model.train() again before training.",),
            {"no_grad_calls": calls, "in_training_mode": training}, loop.step_line or "loop")
    return None


class LoopModeCheck(Check):
    """Script mode: training steps run in train mode and evaluation passes in eval mode.

    Reads ``model.training`` of the trained module at each watched optimizer step and in
    each pass under ``no_grad``; speaks only when the module holds dropout or batch norm.
    """

    name = "loop-mode"
    stage = Stage.RUN
    order = 2
    requires = ("script",)
    emits = ("wrong-mode",)

    def run(self, ctx):
        verdict = judge_mode(ctx.watched, float(ctx.config.get("script.min_share")))
        return [self.judged(verdict)] if verdict is not None else []
