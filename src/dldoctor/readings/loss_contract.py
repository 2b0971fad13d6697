"""The input contracts of torch's losses, judged from measured numbers.

Every built-in loss states what it takes: ``BCELoss`` and ``BCEWithLogitsLoss`` read each
target as a probability in [0, 1] of the output's shape, ``CrossEntropyLoss`` takes
class indices or (same shape as the output) class probabilities, ``KLDivLoss``
distributions. The loss's own module type is the contract here (the class from
``torch.nn``, through a subclass too), or the function's name for ``torch.nn.functional``.

Three readings, each a pure function of plain numbers:

* :func:`crash_verdict` names a crash raised *inside* a loss by the contract the traced
  tensors break (five class indices into a one-output BCE are ``label-out-of-range``,
  whatever torch's message says: a shape, a dtype or a value error).
* :func:`judge_distributions` judges float targets read as distributions (cross-entropy's
  probability targets, KL divergence's targets).
* :func:`judge_sign` is the sign test for any loss whose targets live in the output's
  space: the loss at a perfect prediction (outputs equal to the targets) must not be
  higher than at the model's outputs, or the objective is being maximised.
"""

from __future__ import annotations

import re
from typing import Any

from dldoctor.core.judgement import Judgement
from dldoctor.core.loss_kinds import kind_of
from dldoctor.core.severity import Severity
from dldoctor.probes.forward_trace import ForwardTrace
from dldoctor.probes.loss_probe import LabelSummary, LossProbe, TargetRows
from dldoctor.readings.outputs import label_list

#: Binary cross-entropies: a target is the probability of the positive class.
BINARY = {"BCELoss": "BCELoss", "binary_cross_entropy": "BCELoss", "BCEWithLogitsLoss": "BCEWithLogitsLoss",
          "binary_cross_entropy_with_logits": "BCEWithLogitsLoss"}
CROSS_ENTROPY = {"CrossEntropyLoss", "cross_entropy"}
KL_DIV = {"KLDivLoss", "kl_div"}

#: What torch says only from inside a binary cross-entropy (a loss whose name says
#: nothing, e.g. a lambda around ``F.binary_cross_entropy``, is known by it).
_BINARY_MESSAGES = (
    (re.compile(r"all elements of target should be between 0 and 1", re.I), "BCELoss"),
    (re.compile(r"using a target size \(.*\) that is different to the input size", re.I), "BCELoss"),
    (re.compile(r"target size \(.*\) must be the same as input size", re.I), "BCEWithLogitsLoss"),
)
_LOSS_MODULES = ("torch.nn.modules.loss",)


def torch_loss_name(loss_fn: Any) -> str:
    """The ``torch.nn`` loss class behind ``loss_fn`` (a subclass too), else the function's name.

    A user's ``class FocalBCE(nn.BCEWithLogitsLoss)`` keeps its parent's contract;
    the MRO says so without importing torch.
    """
    for cls in type(loss_fn).__mro__:
        if cls.__module__ in _LOSS_MODULES and not cls.__name__.startswith("_"):
            return cls.__name__
    return getattr(loss_fn, "__name__", "") or ""


def binary_loss(name: str, message: str = "") -> str:
    """``BCELoss`` / ``BCEWithLogitsLoss`` when ``name`` (or, for a nameless loss, the
    crash message) says the loss is a binary cross-entropy; else ""."""
    if name in BINARY:
        return BINARY[name]
    if kind_of(name):
        return ""
    for pattern, loss in _BINARY_MESSAGES:
        if pattern.search(message):
            return loss
    return ""


def _shape(shape: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, shape))}]"


def crash_verdict(trace: ForwardTrace, loss: str, labels: LabelSummary | None, location: str,
                  classified: Judgement) -> Judgement | None:
    """The crash of a loss named by the contract its inputs break, or None (``classified`` stands).

    ``loss`` is the loss's torch name (:func:`torch_loss_name`); ``labels`` the targets
    of the cached batches (class counts when they are whole numbers); ``location`` where
    the data is built (the Dataset's ``__getitem__``) or ""; ``classified`` the verdict
    from the crash's structure and message, whose torch message and traceback are kept
    as evidence.
    """
    crash = trace.crash
    if crash is None or crash.kind or crash.phase not in ("loss", "backward") or crash.is_oom:
        return None
    if len(trace.outputs) != 1 or len(trace.targets) != 1 or trace.target_range is None:
        return None
    if classified.diagnosis_id == "device-mismatch":
        return None
    binary = binary_loss(loss, crash.message)
    if not binary:
        return None
    out, tgt = trace.outputs[0], trace.targets[0]
    lo, hi = trace.target_range
    seen = labels.batches if labels is not None and labels.batches is not None else None
    kept = tuple(e for e in classified.evidence if e.startswith(("torch said:", "in your code at", "Traceback")))
    metrics = {**classified.metrics, "loss": binary, "target_min": lo, "target_max": hi,
               "torch_verdict": classified.diagnosis_id or ""}
    given = f"outputs {_shape(out.shape)} {out.dtype}, targets {_shape(tgt.shape)} {tgt.dtype}"
    if lo < 0.0 or hi > 1.0:
        values = label_list(seen) if seen is not None and seen.integral else f"in [{lo:g}, {hi:g}]"
        classes = seen.labels if seen is not None and seen.integral else ()
        fixes = []
        if len(classes) >= 3 and min(classes) >= 0:
            width = max(classes) + 1
            fixes.append(f"These are {len(classes)} class indices: use nn.CrossEntropyLoss with a {width}-wide last "
                         f"layer (out_features={width}) and long targets of shape [N] (y.long()), not a binary loss.")
        fixes.append("If the task is binary, map the targets to 0/1 where the dataset is built (e.g. (y > 0).float()), "
                     f"with the output's shape {_shape(out.shape)}.")
        symptom = _symptom(classified)
        evidence = (f"{binary} reads each target as the probability of the positive class, so every target must lie "
                    f"in [0, 1]; the training targets read are {values} ({given})",
                    *((f"read alone, the crash looks like a {symptom} problem ({classified.title}), but no "
                       f"{symptom} change makes these targets probabilities",)
                      if symptom != "values" and classified.title else ()),
                    *kept)
        return Judgement("label-out-of-range", Severity.ERROR, 0.95,
                         f"Targets {values} reach {binary}, which takes probabilities in [0, 1]"
                         + (f": {len(classes)} classes into a {out.shape[-1] if out.shape else 1}-output binary loss"
                            if len(classes) >= 3 else ""),
                         evidence, tuple(fixes), metrics, location or "data", case="binary-targets")
    if out.shape != tgt.shape and _numel(out.shape) == _numel(tgt.shape) and tgt.is_floating:
        # Probabilities of the right dtype in another shape ([N] against [N, 1]): not class
        # indices stored as floats, whatever a cross-entropy would make of them.
        fixes = [f"Give the targets the output's shape: targets.view_as(outputs) ({_shape(tgt.shape)} -> "
                 f"{_shape(out.shape)}), once, in the dataset or the spec's forward.",
                 f"Or squeeze the output to the targets' shape before the loss: outputs.view(-1) "
                 f"({_shape(out.shape)} -> {_shape(tgt.shape)})."]
        evidence = (f"{binary} compares each output with the target at the same position, so it needs targets of the "
                    f"output's shape; it got {given} (targets in [{lo:g}, {hi:g}], valid probabilities)",
                    *kept)
        return Judgement("shape-mismatch", Severity.ERROR, 0.95,
                         f"{binary} gets targets {_shape(tgt.shape)} for outputs {_shape(out.shape)}: same values, "
                         "not the same shape", evidence, tuple(fixes), metrics, "loss", case="binary-shape")
    return None


def _symptom(classified: Judgement) -> str:
    """What torch's message (as classified) complained about: ``shape``, ``dtype`` or ``values``."""
    return {"shape-mismatch": "shape", "dtype-mismatch": "dtype"}.get(classified.diagnosis_id or "", "values")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def judge_distributions(loss: str, rows: TargetRows, log_target: bool, tolerance: float) -> Judgement | None:
    """Float targets of the output's shape, read as distributions over dim 1, against the loss.

    ``CrossEntropyLoss`` reads such targets as class probabilities; ``KLDivLoss`` as the
    target distribution (log-probabilities with ``log_target=True``). ``tolerance`` is
    the largest |row sum - 1| (or |sum of exp - 1|) of a distribution.
    """
    named = "CrossEntropyLoss" if loss in CROSS_ENTROPY else "KLDivLoss" if loss in KL_DIV else ""
    if not named or rows.rows == 0 or rows.width < 2 or rows.nonfinite:
        return None
    metrics = {"target_min": rows.minimum, "target_max": rows.maximum, "row_sum_dev": rows.sum_dev,
               "exp_row_sum_dev": rows.exp_sum_dev, "rows_checked": rows.rows, "classes": rows.width, "loss": named}
    probabilities = rows.minimum >= -tolerance and rows.maximum <= 1 + tolerance
    distributions = probabilities and rows.sum_dev <= tolerance
    log_probs = rows.maximum <= tolerance and rows.exp_sum_dev <= tolerance
    where = f"{rows.rows} target rows of {rows.width} classes (the cached training batches)"
    if named == "KLDivLoss" and log_target:
        if log_probs:
            return None
        if distributions:
            return Judgement("label-out-of-range", Severity.ERROR, 0.9,
                             "KLDivLoss(log_target=True) gets probabilities as targets",
                             (f"{where}: values in [{rows.minimum:.3g}, {rows.maximum:.3g}] and rows summing to 1 "
                              f"(max |sum - 1| = {rows.sum_dev:.2g}): probabilities, not log-probabilities",
                              "with log_target=True the loss takes exp of each target: the distribution it fits is "
                              "not the one in the data"),
                             ("Drop log_target=True (the targets already are probabilities), or pass "
                              "targets.log() / F.log_softmax(teacher_logits, dim=1).",),
                             metrics, "loss", case="probs-as-log-target")
        return None
    if distributions:
        return None
    if named == "KLDivLoss" and log_probs:
        # Decisive (every row is exactly a log-distribution), and the root of the NaN the
        # numerics check finds in the same loss (0.95): ranked above it.
        return Judgement("label-out-of-range", Severity.ERROR, 0.97,
                         "KLDivLoss gets log-probabilities as targets without log_target=True",
                         (f"{where}: every value is <= 0 (max {rows.maximum:.3g}) and exp of each row sums to 1 "
                          f"(max |sum - 1| = {rows.exp_sum_dev:.2g}): log-probabilities",
                          "KLDivLoss reads its targets as probabilities unless log_target=True: on negative "
                          "'probabilities' target * log(target) is NaN, and the divergence is not a divergence"),
                         ("Pass log_target=True to nn.KLDivLoss (F.kl_div(..., log_target=True)), or give it "
                          "probabilities: F.softmax(teacher_logits, dim=1) instead of F.log_softmax.",),
                         metrics, "loss", case="log-probs-as-target")
    if not probabilities:
        fixes = [f"{named} reads float targets of the output's shape as class probabilities: make each row a "
                 "distribution (values in [0, 1] summing to 1), e.g. F.softmax(scores, dim=1) or a one-hot / "
                 "label-smoothed vector."]
        if named == "CrossEntropyLoss":
            fixes.append("For class indices, pass long targets of shape [N] (one index per sample) instead.")
            fixes.append("For a regression of these values, use nn.MSELoss (or nn.HuberLoss) on the raw output.")
        return Judgement("label-out-of-range", Severity.ERROR, 0.9,
                         f"{named} gets targets outside [0, 1]: values in [{rows.minimum:.3g}, {rows.maximum:.3g}]",
                         (f"{where}: values in [{rows.minimum:.3g}, {rows.maximum:.3g}]; {named} reads each row as "
                          "the probability of each class",
                          "a negative or above-1 'probability' makes the loss unbounded below: it falls by pushing "
                          "those classes' scores to infinity, not by learning"),
                         tuple(fixes), metrics, "data", case="not-probabilities")
    multi = rows.max_sum > 1 + tolerance
    fixes = ([f"The rows are multi-hot (up to {rows.max_sum:.3g} classes per sample): for independent labels use "
              "nn.BCEWithLogitsLoss with one output per label; softmax makes the labels compete for one unit of "
              "probability."] if multi and named == "CrossEntropyLoss" else [])
    fixes.append("Normalise each target row to sum to 1 (targets / targets.sum(dim=1, keepdim=True)), or build "
                 "it as a distribution (one-hot, label smoothing, F.softmax).")
    # Rows above 1 can never be fitted (several classes each want all of the probability);
    # rows below 1 only weigh their sample less.
    severity, confidence = (Severity.ERROR, 0.85) if multi else (Severity.WARNING, 0.7)
    return Judgement("label-out-of-range", severity, confidence,
                     f"{named}'s target rows do not sum to 1 (row sums from {rows.min_sum:.3g} to "
                     f"{rows.max_sum:.3g})",
                     (f"{where}: values in [{rows.minimum:.3g}, {rows.maximum:.3g}] but row sums from "
                      f"{rows.min_sum:.3g} to {rows.max_sum:.3g} (max |sum - 1| = {rows.sum_dev:.3g})",
                      f"{named} reads each row as a distribution over the classes: its best prediction is the row "
                      "divided by its sum, and the loss there is not 0"
                      + (": a sample with several 1s can never be fitted, the classes share one unit of probability"
                         if multi else "")),
                     tuple(fixes), metrics, "data", case="rows-not-distributions")


def judge_sign(kind: str, probe: LossProbe, stationary_rel: float, margin_rel: float) -> Judgement | None:
    """The sign test: is a perfect prediction (outputs equal to the targets) the loss's minimum side?

    Judged only where outputs and targets live in the same space, which the loss itself
    says: a perfect prediction must be a stationary point (gradient on the outputs at
    most ``stationary_rel`` of the gradient at the model's outputs), as it is for an
    error (MSE, L1), a similarity (1 - cosine) or a correlation. Losses on logits or
    log-probabilities, whose inputs are never their targets, are skipped. The loss
    flipped when it *rises* from the model's outputs, through the half-way point, to
    the perfect prediction, by more than ``margin_rel`` of its scale.
    """
    if kind in ("logits", "log-probs", "binary-logits"):
        return None
    at_out, half, perfect = probe.loss_at_outputs, probe.loss_halfway, probe.loss_at_perfect
    g_out, g_perfect = probe.grad_at_outputs, probe.grad_at_perfect
    if at_out is None or half is None or perfect is None or g_out is None or g_perfect is None or g_out <= 0:
        return None
    if g_perfect > stationary_rel * g_out:
        return None  # a perfect prediction is not where this loss rests: its inputs are not its targets
    scale = max(abs(at_out), abs(perfect), 1e-12)
    if not (perfect - at_out > margin_rel * scale and at_out < half < perfect):
        return None
    metrics = {"loss_at_outputs": at_out, "loss_halfway": half, "loss_at_perfect": perfect,
               "grad_at_perfect": g_perfect, "grad_at_outputs": g_out}
    return Judgement(
        "loss-sign-flipped", Severity.ERROR, 0.9,
        f"The loss is highest at a perfect prediction: {perfect:.4g} with outputs equal to the targets, "
        f"{at_out:.4g} at the model's outputs",
        (f"on the first training batch the loss is {at_out:.4g} at the model's outputs, {half:.4g} half-way to the "
         f"targets and {perfect:.4g} at outputs equal to the targets: it rises as the prediction improves",
         f"a perfect prediction is a stationary point of the loss (gradient {g_perfect:.2g} there against "
         f"{g_out:.2g} at the model's outputs): the loss measures agreement, and minimising it drives the "
         "outputs away from the targets",
         "a similarity or a correlation (cosine, Pearson) is maximised when the prediction is right; as a loss it "
         "needs a minus sign or 1 - ..."),
        ("Minimise the disagreement, not the agreement: return 1 - F.cosine_similarity(outputs, targets).mean() "
         "(or -correlation), not the similarity itself.",
         "If the objective is a score to maximise, negate it once in the loss: loss = -score."),
        metrics, "loss", case="bounded-objective")
