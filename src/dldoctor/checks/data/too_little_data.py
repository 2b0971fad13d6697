"""The too-little-data check: enough samples, overall and per class, for the model being trained?"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.parameter import is_lazy

from dldoctor.api import Check, CheckIncomplete, Severity, Stage, lookup
from dldoctor.api.measure import data as m
from dldoctor.api.measure import isolated_rng, trainable_count
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import data as words
from dldoctor.api.read import gap_standard_error, training_loss_left


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


def measured_gap(run, cfg) -> tuple[bool, str] | None:
    """What the short training run measures against the parameter rule: (generalises, why),
    or None when it cannot tell.

    Parameters per sample is a rule of thumb for a risk of memorising; the short run
    measures it, once it (1) has fitted its training data: the training error is at
    most ``fitted_error``, or after at least ``fitted_min_steps`` steps the training loss
    is no longer falling clearly (``training_loss_left``: a gap read while the fit is
    still under way is provisional, and a large model on few samples has not memorised
    them after a few dozen steps; a loss that has levelled off within a handful of steps
    has not started).
    Then (2) a train/validation gap of at most ``gap_z`` standard errors of the gap for
    the splits' sizes (Agresti-Caffo for error rates, sqrt(2/n) relative for an MSE), or
    at most ``ordinary_gap`` outright, is ordinary: the model generalises at its size.
    """
    last = run.last
    if last is None or last.train is None or last.val is None or last.train.error is None or last.val.error is None:
        return None
    train, val = last.train.error, last.val.error
    losses = [e.train.loss for e in run.epochs if e.train is not None]
    fitted = (run.error_name == "1 - accuracy" and train <= float(cfg["fitted_error"])) or \
        (last.steps >= int(cfg["fitted_min_steps"]) and len(losses) >= 3
         and training_loss_left(losses, float(cfg["train_loss_fall"])) is None)
    if not fitted:
        return None
    se = gap_standard_error(run.error_name, train, val, last.train.samples, last.val.samples)
    gap = val - train
    ordinary = gap <= max(float(cfg["ordinary_gap"]), float(cfg["gap_z"]) * se if se is not None else 0.0)
    noise = f" ({gap / se:.1f} standard errors of {se:.3f} for {last.val.samples} validation samples)" if se else ""
    head = (f"measured: after dldoctor's short training run ({last.epoch} epochs, {last.steps} steps) the model fits "
            f"its training data ({run.error_name} {train:.3f}) and its validation {run.error_name} is {val:.3f}, "
            f"a gap of {gap:+.3f}{noise}")
    if ordinary:
        return True, head + ": ordinary for these sizes, so at this size it generalises"
    return False, head + ": it memorises what it cannot generalise"


class TooLittleDataCheck(Check):
    """The training set is large enough for the model: samples overall and per class versus parameters.

    Counts the training samples (per class for classification) and the model's
    trainable parameters. Too few samples of a class to learn it, or far more
    parameters per sample than models that are known to train well from scratch,
    is a warning; it then explains an over-fitting gap the evaluation stage finds.
    Parameters per sample is a rule of thumb, so with a validation split it yields to
    the measurement: when the short training run (shared with the evaluation stage) has
    fitted the training data with a train/validation gap ordinary for the splits' sizes,
    it is a note. A validation set too small to measure accuracy to a few points is a
    note.
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
        reading: tuple[bool, str] | None = None
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
            reading = self._measured(ctx, cfg)
            measured = reading[1] if reading else ""
            issues.append((Severity.INFO if reading and reading[0] else Severity.WARNING,
                           f"{words.number(per_sample)} trainable parameters per training sample",
                           f"the model has {words.number(params)} trainable parameters for {words.number(n)} training "
                           f"samples ({words.number(per_sample)} per sample); networks that train well from scratch "
                           f"use far fewer (ResNet-18 on CIFAR-10: 220, WideResNet-28-10: 730), so this one can "
                           "memorise the training set" + (f"; {measured}" if measured else "")))
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
                   "short_run_generalises": reading[0] if reading else None,
                   "smallest_class": float(counts[counts > 0].min()) if counts is not None and (counts > 0).any()
                   else None}
        return [self.finding("too-little-data", severity, confidence, title=title, evidence=evidence, fixes=fixes,
                             metrics=metrics, location=words.location())]

    @staticmethod
    def _measured(ctx, cfg) -> tuple[bool, str] | None:
        """What the short training run says about the parameter rule (``measured_gap``), or None
        without a validation split or a run to read."""
        if not ctx.has_split("val"):
            return None
        try:
            run = training_run.main_run(ctx)
        except CheckIncomplete:  # the run's own failure is reported by the checks that need it
            return None
        return measured_gap(run, cfg)
