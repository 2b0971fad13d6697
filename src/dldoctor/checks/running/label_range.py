"""The label-range check: do the training labels fit the model's output, beyond the first batch?"""

from __future__ import annotations

import dataclasses

from dldoctor.api import Check, Judgement, Severity, Stage
from dldoctor.api.measure import LabelCounts, LabelSummary, display_path, loss_kind, measure_labels, measure_loss
from dldoctor.api.read import label_list, output_producer

ID = "label-out-of-range"

INTEGER_DTYPES = {"uint8", "int8", "int16", "int32", "int64"}


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The ``label_range`` config section."""

    chance_alpha: float
    wide_head_ratio: float


def _source(labels: LabelSummary) -> tuple[LabelCounts, str, bool]:
    if labels.dataset is not None:
        return labels.dataset, f"the training set ({labels.dataset.rows} samples)", True
    assert labels.batches is not None
    return labels.batches, f"the first {labels.batches.rows} training samples", False


def judge_index_labels(width: int, labels: LabelSummary, num_classes: int | None, t: Thresholds) -> list[Judgement]:
    """Judge class-index targets against a ``width``-wide output (CrossEntropy/NLL).

    Each judgement's ``case`` is ``out-of-range`` (a label the output cannot represent
    occurs in the data: a crash ahead; labels 1..C for C outputs are 1-based and say so),
    ``unused-zero`` (label 0 never occurs in the whole training set, info only),
    ``wide-head`` (the top outputs are never targets) or ``num-classes`` (the spec's
    ``num_classes`` disagrees with the output width; ``binary-targets`` is
    :func:`judge_binary_targets`'s); its ``location`` is ``data`` or ``head``.
    """
    if labels.batches is None or not labels.batches.integral or not labels.batches.counts:
        return []
    seen, where, full = _source(labels)
    lo, hi = int(seen.minimum), int(seen.maximum)
    count = dict(seen.counts)
    n = seen.rows
    metrics: dict[str, float] = {"classes": width, "label_min": lo, "label_max": hi, "distinct_labels": len(count),
               "samples_seen": n, "whole_training_set": full}
    verdicts: list[Judgement] = []
    if num_classes is not None and num_classes != width:
        verdicts.append(Judgement(
            ID, Severity.WARNING, 0.75,
            f"The spec says num_classes={num_classes} but the model outputs {width} classes",
            (f"the output has {width} columns while the spec's num_classes is {num_classes}; "
             f"the labels in {where} are {label_list(seen)}",),
            (f"Make the last layer {num_classes} wide (out_features={num_classes}), or correct num_classes in "
             f"the spec if the data really has {width} classes.",),
            {**metrics, "spec_num_classes": num_classes}, "head", case="num-classes"))
    if lo < 0 or hi >= width:
        bad = sorted(label for label in count if label < 0 or label >= width)
        n_bad = sum(count[label] for label in bad)
        one_based = lo == 1 and hi == width
        fixes = (["The labels run 1.." + str(width) + ": shift them to start at 0 (y - 1) where the dataset is "
                  "built.", f"Or, if 0 is a real class that this data lacks, make the last layer {hi + 1} wide."]
                 if one_based else
                 [f"Make the last layer {hi + 1} wide (out_features={hi + 1}), or map the labels into "
                  f"[0, {width})."])
        if lo < 0:
            fixes.append("For a padding or 'unknown' label, pass ignore_index=<that label> to the loss.")
        metrics["one_based"] = one_based
        verdicts.append(Judgement(
            ID, Severity.ERROR, 0.95,
            f"Labels {label_list(LabelCounts(0, 0, 0, 0, True, tuple((b, 0) for b in bad)))} occur in the "
            f"training data but the model outputs only {width} classes (0..{width - 1})",
            (f"{n_bad} target{'s' if n_bad != 1 else ''} in {where} "
             f"{'are' if n_bad != 1 else 'is'} outside [0, {width}): labels are {label_list(seen)}",
             "the first batch happened not to contain one, so the first step ran; training will crash "
             "(a device-side assert on the GPU) at the first batch that does"),
            tuple(fixes), {**metrics, "out_of_range": n_bad}, "data", case="out-of-range"))
        return verdicts
    if lo >= 1 and hi == width - 1 and full and labels.ignored != 0:
        # Label 0 never occurs in the whole training set and the head is sized max + 1.
        # That is not evidence of 1-based labels: labels 1..C run up to C, an index the
        # head cannot hold (the out-of-range case above). Labels 1..C-1 under a C-wide
        # head, e.g. a vocabulary whose id 0 is padding, leave one output unused: worth
        # knowing, not an alarm. Seen in the batches only it is not even that: label C
        # missing by chance is as likely as label 0 missing by chance.
        verdicts.append(Judgement(
            ID, Severity.INFO, 0.5,
            f"Class 0 never occurs in the training set: labels run 1..{hi}, output 0 is never a target",
            (f"the labels in {where} are {label_list(seen)}; the model outputs {width} classes",
             "output 0 is never a target: harmless (an unused id, such as padding in a vocabulary), but if the "
             "labels are 1-based it wastes one output and its softmax mass"),
            (f"If the labels are 1-based, shift them (y - 1) and make the last layer {width - 1} wide.",
             "If id 0 is padding, pass ignore_index=0 to the loss so that it is never a target by construction."),
            metrics, "data", case="unused-zero"))
    if hi < width - 1:
        ratio = width / (hi + 1)
        chance = 0.0 if full else ((hi + 1) / width) ** n
        metrics = {**metrics, "head_to_label_ratio": ratio, "chance_top_absent": chance}
        if ratio >= t.wide_head_ratio and (full or chance < t.chance_alpha):
            severity, confidence = Severity.WARNING, 0.8 if full else 0.6
        elif full:
            severity, confidence = Severity.INFO, 0.6
        else:
            return verdicts
        verdicts.append(Judgement(
            ID, severity, confidence,
            f"The model outputs {width} classes but the labels only go up to {hi}",
            (f"the labels in {where} are {label_list(seen)}: outputs {hi + 1}..{width - 1} are never a "
             f"target ({ratio:.3g}x more outputs than classes)",
             "training still runs, but the loss starts at ln " + str(width) + " instead of ln " + str(hi + 1)
             + " and the first steps are spent pushing never-used classes down"
             + (" (a head copied from another task, e.g. 1000 ImageNet classes, is the usual cause)"
                if severity is Severity.WARNING else "")),
            (f"Set the last layer's out_features to the number of classes ({hi + 1}).",
             "If the head came with a pretrained model, replace it: model.fc = nn.Linear(in_features, "
             f"{hi + 1})."),
            metrics, "head", case="wide-head"))
    return verdicts


def judge_binary_targets(kind: str, labels: LabelSummary) -> list[Judgement]:
    """Judge targets of a binary cross-entropy: each must be a probability in [0, 1]."""
    if labels.batches is None:
        return []
    seen, where, full = _source(labels)
    if seen.minimum >= 0.0 and seen.maximum <= 1.0:
        return []
    classes = seen.labels if seen.integral else ()
    metrics = {"target_min": seen.minimum, "target_max": seen.maximum, "samples_seen": seen.rows,
               "whole_training_set": full}
    loss = "BCEWithLogitsLoss" if kind == "binary-logits" else "BCELoss"
    evidence = [f"the targets in {where} take values {label_list(seen)}; {loss} reads each target as the "
                f"probability of the positive class, so it must lie in [0, 1]"]
    if kind == "binary-logits":
        evidence.append("outside [0, 1] the loss is unbounded below: a target of 2 is 'fitted' by pushing the "
                        "logit to +infinity, so the loss falls without the model learning anything")
    else:
        evidence.append("BCELoss raises on such targets: training will crash at the first batch that has one")
    fixes = []
    if classes and len(classes) >= 3 and min(classes) >= 0:
        fixes.append(f"These are {len(classes)} classes: use nn.CrossEntropyLoss with a {max(classes) + 1}-wide "
                     f"last layer and long targets (y.long()), not a binary loss.")
    fixes.append("If the task is binary, map the targets to 0/1 where the dataset is built (e.g. (y > 0).float()).")
    return [Judgement(ID, Severity.ERROR, 0.95,
                    f"Targets outside [0, 1] reach {loss}: values {label_list(seen)}",
                    tuple(evidence), tuple(fixes), metrics, "data", case="binary-targets")]


def judge_binary_width(width: int, num_classes: int | None) -> list[Judgement]:
    """The spec's num_classes against a binary/multi-label output of ``width`` columns."""
    if num_classes is None or num_classes == width or (width == 1 and num_classes in (1, 2)):
        return []
    return [Judgement(
        ID, Severity.WARNING, 0.7,
        f"The spec says num_classes={num_classes} but the model outputs {width} column{'s' * (width != 1)}",
        (f"a binary cross-entropy gets {width} output column{'s' * (width != 1)}, one per independent label, "
         f"while the spec's num_classes is {num_classes}",),
        (f"Make the last layer {num_classes} wide for {num_classes} independent labels, or use "
         f"nn.CrossEntropyLoss for {num_classes} mutually exclusive classes.",),
        {"classes": width, "spec_num_classes": num_classes}, "head", case="num-classes")]


class LabelRangeCheck(Check):
    """The training labels fit the model's output: no class index it cannot represent, none wasted.

    Reads the targets of the cached training batches and, when free to read, of the
    whole training set, and compares them with the output width: labels beyond it
    that the first batch did not happen to contain (a crash ahead; labels 1..C are
    1-based), top outputs that are never a target (a head sized for another task),
    the spec's ``num_classes``, and targets of a binary cross-entropy outside [0, 1].
    """

    name = "label-range"
    stage = Stage.RUN
    order = 24
    requires = ("forward_pass",)
    emits = (ID,)

    def run(self, ctx):
        trace = ctx.forward_trace()
        if len(trace.outputs) != 1 or len(trace.targets) != 1:
            return []
        kind, _ = loss_kind(trace.loss_name)
        if not kind:
            kind, _ = loss_kind(trace.loss_name, measure_loss(ctx).matches)
        shape = trace.outputs[0].shape
        spec_classes = int(ctx.spec.num_classes) if ctx.spec.num_classes else None
        labels = measure_labels(ctx)
        t = Thresholds(chance_alpha=float(ctx.config.get("label_range.chance_alpha")),
                       wide_head_ratio=float(ctx.config.get("label_range.wide_head_ratio")))
        if kind in ("logits", "log-probs") and len(shape) >= 2 and trace.targets[0].dtype in INTEGER_DTYPES:
            verdicts = judge_index_labels(shape[1], labels, spec_classes, t)
        elif kind in ("binary-logits", "probs"):
            width = shape[-1] if len(shape) >= 2 else 1
            verdicts = judge_binary_targets(kind, labels) + judge_binary_width(width, spec_classes)
        else:
            return []
        if not verdicts:
            return []
        verdicts.sort(key=lambda v: (-v.severity.rank, -v.confidence))
        top = verdicts[0]
        evidence = list(top.evidence) + [e for v in verdicts[1:] for e in (v.title,) + v.evidence]
        fixes = list(top.fixes) + [f for v in verdicts[1:] for f in v.fixes if f not in top.fixes]
        metrics = {k: v for verdict in reversed(verdicts) for k, v in verdict.metrics.items()}
        metrics["case"] = top.case
        if top.location == "head":
            producer = output_producer(trace)
            location = display_path(producer.path) if producer is not None else "model"
        else:
            location = "data"
        return [self.finding(ID, top.severity, top.confidence, title=top.title,
                             evidence=evidence, fixes=fixes, metrics=metrics, location=location)]
