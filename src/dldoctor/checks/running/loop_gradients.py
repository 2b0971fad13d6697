"""Script mode: are the gradients of the user's own loop reset, present and applied?"""

from __future__ import annotations

from dldoctor.api import Check, Judgement, Severity, Stage, StepRecord, WatchedLoop


def _first_steps_left_out(steps: list[StepRecord]) -> list[StepRecord]:
    """Each optimizer's steps after its first (nothing could be left over before the first)."""
    seen: set[int] = set()
    later = []
    for s in steps:
        if s.optimizer in seen:
            later.append(s)
        seen.add(s.optimizer)
    return later


def judge_stale(loop: WatchedLoop, min_share: float) -> Judgement | None:
    """Gradients of the previous step still there when the next backward() runs, at most steps.

    Deliberate accumulation (backward k times, then step and reset) starts every window
    from reset gradients, so it never counts: only the first backward() after a step is read.
    """
    read = [s for s in _first_steps_left_out(loop.steps) if s.fresh is not None]
    stale = [s for s in read if s.fresh is False]
    if len(stale) < 2 or len(stale) < min_share * len(read):
        return None
    per_step = sorted({s.backwards for s in stale})
    where = f" (backward() at {loop.backward_line}, optimizer.step() at {loop.step_line})" if loop.backward_line else ""
    evidence = (
        f"at {len(stale)} of {len(read)} watched optimizer steps, the gradients of the previous step were still "
        f"there when the next backward() ran{where}: backward() adds to .grad, so every step applied the sum of "
        "all gradients so far",
        f"backward() calls per optimizer step: {', '.join(map(str, per_step))} (gradient accumulation would reset "
        "after each step; nothing did)",
    )
    fixes = ("Call optimizer.zero_grad() once per step: before loss.backward(), or right after optimizer.step().",
             "For gradient accumulation, call zero_grad() after each optimizer.step(), not never.")
    return Judgement("stale-gradients", Severity.ERROR, 0.9,
                     "Gradients are never reset: each optimizer step applies the sum of all earlier gradients",
                     evidence, fixes, {"stale_steps": len(stale), "steps_read": len(read)},
                     loop.backward_line or "loop")


def judge_no_gradient(loop: WatchedLoop, min_share: float) -> Judgement | None:
    """Steps taken with no gradient at all, an optimizer over another model, or no step ever."""
    if not loop.steps and loop.backwards > 0:
        return Judgement("no-gradient-flow", Severity.ERROR, 0.9,
                         f"backward() ran {loop.backwards} times but optimizer.step() never ran",
                         (f"{loop.backwards} backward() calls watched (first at {loop.backward_line or '?'}), "
                          "and no optimizer step: the weights never change",),
                         ("Call optimizer.step() after loss.backward() in the training loop.",),
                         {"backwards": loop.backwards, "steps": 0}, loop.backward_line or "loop")
    first = [s for s in loop.steps if s.optimizer == 0]
    if not first:
        return None
    held = first[0].held
    if loop.foreign and held and loop.unheld and loop.foreign >= held:
        return Judgement(
            "no-gradient-flow", Severity.ERROR, 0.95,
            f"The optimizer holds none of the trained {loop.model_name}'s parameters",
            (f"the optimizer that steps holds {held} parameter tensors, none of them {loop.model_name}'s; the "
             f"{loop.model_name} called in the loop has {len(loop.unheld)} trainable ones "
             f"({', '.join(loop.unheld[:4])}{', ...' if len(loop.unheld) > 4 else ''})",
             "the optimizer was built on another instance (the model was rebuilt, reloaded or copied after "
             "the optimizer was created): the trained model never changes"),
            ("Create the optimizer after the final model object exists: model = Net(); "
             "optimizer = torch.optim.Adam(model.parameters(), ...) with nothing reassigning model afterwards.",),
            {"foreign_params": loop.foreign, "model_params": len(loop.unheld)}, loop.step_line or "loop")
    read = [s for s in first if s.grads_at_step is not None]
    empty = [s for s in read if s.held and s.grads_at_step == 0]
    if len(empty) >= 2 and len(empty) >= min_share * len(read):
        zero_before_step = all(s.backwards > 0 for s in empty)
        evidence = [f"at {len(empty)} of {len(read)} watched steps read, every gradient the optimizer holds was None "
                    f"or zero when optimizer.step() ran ({loop.step_line or '?'})"]
        if zero_before_step:
            evidence.append("backward() did run before each of those steps: its gradients were reset before the "
                            "step (zero_grad() between backward() and step()), or the loss did not depend on the "
                            "parameters (computed from a detached tensor)")
        fixes = ("Order the loop as optimizer.zero_grad(); loss.backward(); optimizer.step().",
                 "Compute the loss from the model's output itself, not from .detach(), .data, .item() or a "
                 "NumPy copy of it.")
        return Judgement("no-gradient-flow", Severity.ERROR, 0.9,
                         "The optimizer steps with no gradient: the weights never change",
                         tuple(evidence), fixes, {"empty_steps": len(empty), "steps": len(read)},
                         loop.step_line or "loop")
    return None


class LoopGradientsCheck(Check):
    """Script mode: the user's loop resets its gradients between steps, and steps on real ones.

    Reads what watching the script recorded at each optimizer step: whether the gradients
    were reset before the first backward() since the previous step, whether the optimizer
    held any non-zero gradient when it stepped, and whether it holds the trained module's
    parameters at all.
    """

    name = "loop-gradients"
    stage = Stage.RUN
    order = 1
    requires = ("script",)
    emits = ("stale-gradients", "no-gradient-flow")

    def run(self, ctx):
        loop = ctx.watched
        share = float(ctx.config.get("script.min_share"))
        verdicts = [judge_stale(loop, share), judge_no_gradient(loop, share)]
        return [self.judged(v) for v in verdicts if v is not None]
