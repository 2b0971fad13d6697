"""The too-little-data check: enough samples, overall and per class, for the model being trained?"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.parameter import is_lazy

from dldoctor.api import Check, Severity, Stage, lookup
from dldoctor.api.measure import data as m
from dldoctor.api.measure import isolated_rng, trainable_count
from dldoctor.api.read import data as words


def trainable_parameters(ctx) -> int:
    """Trainable parameters of the model; lazy modules are materialised by one forward pass on a copy."""
    model = ctx.template_model()
    if any(is_lazy(p) for p in model.parameters()):
        model = ctx.fresh_model()
        try:
            with torch.no_grad(), isolated_rng(ctx.seed):
                ctx.forward_fn(model, ctx.first_batch("train"))
        except Exception:  # a crash is the forward-pass check's business
            pass
    return trainable_count(model)


def accuracy_margin(n: int) -> float:
    """Half-width of a 95% interval of an accuracy near 0.5 measured on ``n`` samples."""
    return 1.96 * math.sqrt(0.25 / max(1, n))


class TooLittleDataCheck(Check):
    """The training set is large enough for the model: samples overall and per class versus parameters.

    Counts the training samples (per class for classification) and the model's
    trainable parameters. Too few samples of a class to learn it, or far more
    parameters per sample than models that are known to train well from scratch,
    is a warning; it then explains an over-fitting gap the evaluation stage finds.
    A validation set too small to measure accuracy to a few points is a note.
    """

    name = "too-little-data"
    stage = Stage.DATA
    order = 20
    emits = ("too-little-data",)

    def run(self, ctx):
        train = m.train(ctx)
        if train is None:
            return []
        cfg = ctx.config.section("too_little_data")
        n = m.split_size(train)
        params = trainable_parameters(ctx)
        per_sample = params / max(1, n)
        issues: list[tuple[Severity, str, str]] = []
        counts = None
        if ctx.task == "classification" and train.labelled.any():
            k = m.classes(ctx, train)
            counts = np.asarray([m.scaled(c, train) for c in np.bincount(train.labels[train.labelled], minlength=k)])
            present = counts[counts > 0]
            smallest = int(np.argmin(np.where(counts > 0, counts, np.inf)))
            if len(present) and present.min() < float(cfg["class_min_warn"]):
                few = int(np.sum((counts > 0) & (counts < float(cfg["class_min_warn"]))))
                issues.append((Severity.WARNING, f"class {smallest} has only {words.number(counts[smallest])} training "
                               "samples", f"{few} of {len(present)} classes have fewer than "
                               f"{cfg['class_min_warn']:g} training samples (smallest: class {smallest}, "
                               f"{words.number(counts[smallest])}): too few to learn a class from scratch or to "
                               "measure how well it is learned"))
        if per_sample >= float(cfg["params_per_sample_warn"]):
            issues.append((Severity.WARNING, f"{words.number(per_sample)} trainable parameters per training sample",
                           f"the model has {words.number(params)} trainable parameters for {words.number(n)} training "
                           f"samples ({words.number(per_sample)} per sample); networks that train well from scratch "
                           f"use far fewer (ResNet-18 on CIFAR-10: 220, WideResNet-28-10: 730), so this one can "
                           "memorise the training set"))
        elif per_sample >= float(cfg["params_per_sample_info"]):
            issues.append((Severity.INFO, f"{words.number(per_sample)} trainable parameters per training sample",
                           f"the model has {words.number(params)} trainable parameters for {words.number(n)} training "
                           f"samples ({words.number(per_sample)} per sample)"))
        for held in m.held_out(ctx):
            size = m.split_size(held)
            if size < int(cfg["held_out_min_info"]):
                issues.append((Severity.INFO, f"the {held.split} set has only {size} samples",
                               f"the {held.split} set has {size} samples: it measures accuracy only to "
                               f"+-{accuracy_margin(size):.2f} (95% interval), so differences between runs "
                               "smaller than that are noise and tuning on it overfits it"))
        if not issues:
            return []
        warnings = [i for i in issues if i[0] is Severity.WARNING]
        severity = Severity.WARNING if warnings else Severity.INFO
        lead = warnings or issues
        title = "Too little data: " + "; ".join(i[1] for i in lead)
        evidence = [i[2] for i in lead] + [i[2] for i in issues if i not in lead]
        sizes = ""
        if counts is not None and (counts > 0).any():
            low, high = counts[counts > 0].min(), counts.max()
            sizes = f", {int((counts > 0).sum())} classes of " + (
                f"{words.number(low)} samples each" if low == high
                else f"{words.number(low)} to {words.number(high)} samples")
        evidence.append(f"{words.number(n)} training samples{words.sampled_note(train)}{sizes}")
        confidence = 0.75 if len(warnings) > 1 else 0.65 if warnings else 0.4
        fixes = list(lookup("too-little-data").fixes)
        if n < int(cfg["cross_validation_below"]):
            fixes.append("With this few samples, estimate performance by k-fold cross-validation "
                         "(sklearn.model_selection.StratifiedKFold) rather than one small validation split.")
        metrics = {"train_samples": n, "parameters": params, "parameters_per_sample": per_sample,
                   "smallest_class": float(counts[counts > 0].min()) if counts is not None and (counts > 0).any()
                   else None}
        return [self.finding("too-little-data", severity, confidence, title=title, evidence=evidence, fixes=fixes,
                             metrics=metrics, location=words.location())]
