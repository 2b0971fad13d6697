"""The eval-mode check: evaluation is deterministic and each phase runs in its mode."""

from __future__ import annotations

from dldoctor.api import Check, CheckIncomplete, Severity, Stage, keys, lookup, user_line
from dldoctor.api.measure import (
    Determinism,
    ModeUse,
    batch_size_of,
    forward_of,
    loader_batch_size,
    measure_determinism,
    slice_batch,
)

_REGISTER_FIX = ("Create the module once in __init__ (self.drop = nn.Dropout(p), self.norm = nn.BatchNorm1d(n)) "
                 "and call it in forward: model.eval() and model.train() only reach registered submodules.")


def _kind(uses: tuple[ModeUse, ...]) -> str:
    types = sorted({u.type_name for u in uses})
    return ", ".join(types)


def _with(label: str, type_name: str, settings: str) -> str:
    return f"{label} ({type_name}{', ' + settings if settings else ''})"


class EvalModeCheck(Check):
    """Evaluation is deterministic, and training steps run in training mode.

    Two eval-mode forwards of the first batch under different seeds must agree; when
    they do not, the first module call whose output changed while its input did not
    is where randomness survives ``model.eval()`` (functional dropout without
    ``training=self.training``, a dropout built inside ``forward``, noise). Modules
    built inside ``forward`` are seen through process-wide hooks. A train-mode
    forward must run dropout and batch norm with ``training=True``; the model as the
    spec builds it should not start in eval mode.
    """

    name = "eval-mode"
    stage = Stage.RUN
    order = 35
    emits = ("wrong-mode",)
    requires = ("forward_pass",)

    def run(self, ctx):
        tol = float(ctx.config.get("eval_mode.tolerance"))
        batch = ctx.first_batch("train")
        n = batch_size_of(batch)
        if n is not None and n == loader_batch_size(ctx.spec.train_loader):  # dim 0 is the batch: a slice will do
            batch = slice_batch(batch, n, min(n, int(ctx.config.get("eval_mode.samples"))))
        det: Determinism = ctx.measure(keys.DETERMINISM, lambda: measure_determinism(
            ctx.fresh_model, ctx.template_model(), batch, ctx.forward_fn, ctx.seed, tol))
        if det.status == "crashed":  # eval- or train-mode forward raised: nothing was checked
            raise CheckIncomplete(f"the model raised when run in eval and train mode on the first batch: "
                                  f"{det.reason}", location=user_line(det.reason))
        if det.status != "measured":
            return []
        findings = []
        random_eval = self._random_eval(det, tol)
        if random_eval is not None:
            findings.append(random_eval)
        reported = {det.source.label} if det.source is not None and random_eval is not None else set()
        train_in_eval = [u for u in det.eval_train_mode if u.label not in reported]
        if train_in_eval:
            findings.append(self._train_mode_in_eval(train_in_eval))
        training_in_eval = self._eval_mode_in_training(det)
        if training_in_eval is not None:
            findings.append(training_in_eval)
        elif det.template_eval_mode and not det.overrides_train:
            findings.append(self._built_in_eval(det))
        return findings

    # -- evaluation is random ------------------------------------------------------
    def _random_eval(self, det: Determinism, tol: float):
        if det.eval_output_change <= tol and det.same_structure:
            return None
        src = det.source
        if src is None:
            # Randomness outside every module: in the spec's forward (e.g. augmentation), not a mode problem.
            return None
        evidence = [
            f"two eval-mode forwards of the same batch under different seeds differ: relative change of the "
            f"output {det.eval_output_change:.3g} (deterministic evaluation gives 0)",
            f"the first module call whose output changed while its input did not is {src.label} "
            f"({src.type_name}); output change {src.output_change:.3g}",
        ]
        metrics = {"eval_output_change": det.eval_output_change, "source_output_change": src.output_change,
                   "source": src.label}
        fixes_tail = list(lookup("wrong-mode").fixes)
        if not src.registered:
            where = src.parent
            if src.mode_dependent:
                evidence.append(f"it is a {src.type_name} built inside {forward_of(where)} with training="
                                f"{src.training}: not a registered submodule, so model.eval() never reaches it")
                return self.finding(
                    "wrong-mode", Severity.ERROR, 0.95,
                    title=f"A {src.type_name} built inside {forward_of(where)} stays active in eval mode",
                    evidence=evidence, fixes=[_REGISTER_FIX] + fixes_tail, metrics=metrics, location=where)
            if src.has_params:
                evidence.append(f"it is a {src.type_name} with parameters built inside {forward_of(where)}: its "
                                f"weights are drawn afresh on every call, and the optimizer never sees them")
                return self.finding(
                    "wrong-mode", Severity.WARNING, 0.5,
                    title=f"A {src.type_name} built inside {forward_of(where)} gets new random weights on every call",
                    evidence=evidence, fixes=[_REGISTER_FIX], metrics=metrics, location=where)
            return self.finding(
                "wrong-mode", Severity.ERROR, 0.85,
                title=f"Evaluation is random: a {src.type_name} built inside {forward_of(where)} draws random numbers",
                evidence=evidence, fixes=[_REGISTER_FIX] + fixes_tail, metrics=metrics, location=where)
        if src.training and src.mode_dependent:
            evidence.append(f"{src.label} ran with training=True although model.eval() was called: something "
                            f"in forward switches it back to training mode")
            return self.finding(
                "wrong-mode", Severity.ERROR, 0.95,
                title=f"{_with(src.label, src.type_name, src.settings)} runs in training mode during evaluation",
                evidence=evidence,
                fixes=[f"Remove the .train() call that reaches {src.label} from forward."] + fixes_tail,
                metrics=metrics, location=src.label)
        span = ""
        if det.source_after and det.source_before:
            span = f", between {det.source_after} and {det.source_before}"
        elif det.source_after:
            span = f", after {det.source_after}"
        elif det.source_before:
            span = f", before {det.source_before}"
        evidence.append(f"the random numbers are drawn in {src.label}.forward itself{span} (the outputs of the "
                        f"submodules it called before that did not change)")
        fix = (f"In {src.label}.forward ({src.type_name}){span}: pass training=self.training to F.dropout / "
               f"F.dropout1d/2d/3d / F.alpha_dropout (their default is training=True), or guard random noise with "
               f"`if self.training:`; better, use an nn.Dropout module created in __init__.")
        return self.finding(
            "wrong-mode", Severity.ERROR, 0.9,
            title=f"Evaluation is random: {src.label}.forward draws random numbers in eval mode{span}",
            evidence=evidence, fixes=[fix] + fixes_tail[1:], metrics=metrics, location=src.label)

    # -- a mode-dependent module in training mode at evaluation ---------------------
    def _train_mode_in_eval(self, uses: list[ModeUse]):
        first = uses[0]
        where = first.label if first.registered else first.parent
        evidence = [f"during an eval-mode forward, {len(uses)} {_kind(tuple(uses))} module"
                    f"{'s' if len(uses) > 1 else ''} ran with training=True: "
                    + ", ".join(_with(u.label, u.type_name, u.settings) for u in uses[:4])]
        if not first.registered:
            evidence.append("a module built inside forward is not a registered submodule, so model.eval() never "
                            "reaches it; a fresh batch norm normalises with each batch's own statistics and never "
                            "keeps the running statistics it would need at evaluation")
            fixes = [_REGISTER_FIX]
            title = f"A {first.type_name} built inside {forward_of(where)} runs in training mode during evaluation"
        else:
            evidence.append("model.eval() had been called: something in forward switches it back to training mode")
            fixes = [f"Remove the .train() call that reaches {first.label} from forward."]
            title = f"{_with(first.label, first.type_name, first.settings)} runs in training mode during evaluation"
        return self.finding("wrong-mode", Severity.ERROR, 0.9, title=title, evidence=evidence,
                            fixes=fixes + list(lookup("wrong-mode").fixes),
                            metrics={"train_mode_modules_at_eval": len(uses)}, location=where)

    # -- training in eval mode -------------------------------------------------------
    def _eval_mode_in_training(self, det: Determinism):
        # Modules of a frozen block (no trainable parameter) are often kept in eval mode on purpose.
        uses = tuple(u for u in det.train_eval_mode if not u.frozen)
        if not uses or (det.overrides_train and not det.train_forward_left_eval):
            # A model that overrides train() manages its modules' modes itself (e.g. frozen batch norm).
            return None
        first = uses[0]
        evidence = [f"model.train() was called before a training forward, yet {len(uses)} {_kind(uses)} module"
                    f"{'s' if len(uses) > 1 else ''} ran with training=False: "
                    + ", ".join(_with(u.label, u.type_name, u.settings) for u in uses[:4])]
        fixes = []
        if det.train_forward_left_eval:
            evidence.append("after the forward, model.training was False: the forward (the model's or the spec's) "
                            "calls .eval()")
            fixes.append("Remove the .eval() call from forward (or from the spec's forward function): call "
                         "model.eval() only around evaluation.")
        else:
            fixes.append(f"Remove the .eval() call that reaches {first.label} during training.")
        evidence.append("dropout then never drops and batch norm never updates its running statistics while "
                        "training")
        return self.finding(
            "wrong-mode", Severity.ERROR, 0.9,
            title=f"Training runs in eval mode: {_with(first.label, first.type_name, first.settings)} "
                  f"has training=False during training steps",
            evidence=evidence, fixes=fixes + list(lookup("wrong-mode").fixes),
            metrics={"eval_mode_modules_in_training": len(uses),
                     "model_left_in_eval": det.train_forward_left_eval},
            location=first.label)

    def _built_in_eval(self, det: Determinism):
        mods = det.template_eval_mode
        evidence = [f"the model as the spec builds it has {len(mods)} of its {det.mode_dependent_count} "
                    f"dropout/batch-norm modules in eval mode: " + ", ".join(mods[:4])
                    + ("" if det.template_training else "; model.training is False")]
        evidence.append("dldoctor calls model.train() before its own steps; a training loop that does not "
                        "would train with dropout off and batch-norm statistics frozen")
        return self.finding(
            "wrong-mode", Severity.WARNING, 0.6,
            title="The model is built in eval mode (dropout/batch norm start with training=False)",
            evidence=evidence,
            fixes=["Remove the .eval() call from __init__ (or from the spec's model factory): modules start in "
                   "training mode.",
                   "Call model.train() at the start of every training epoch and model.eval() before "
                   "evaluation."],
            metrics={"eval_mode_modules_at_build": len(mods)}, location=mods[0])
