"""The class-imbalance check: are some classes much rarer than others in what the model trains on?"""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from dldoctor.api import Check, Severity, Stage, lookup
from dldoctor.api.measure import data as m
from dldoctor.api.read import data as words


def _counts_text(counts: np.ndarray, shown: int) -> str:
    order = np.argsort(-counts, kind="stable")
    parts = [f"class {c}: {words.number(counts[c])}" for c in order]
    if len(parts) > shown:
        parts = parts[: shown - 2] + ["..."] + parts[-2:]
    return ", ".join(parts)


def _loss_weighted(loss_fn) -> str:
    """How the user's loss already weights classes, or ""."""
    for attr in ("weight", "pos_weight"):
        value = getattr(loss_fn, attr, None)
        if value is not None and isinstance(loss_fn, nn.Module):
            return f"the loss already has {attr}={[round(float(v), 3) for v in value.reshape(-1)][:8]}"
    return ""


def imbalance_fixes(counts: np.ndarray, binary_logit: bool) -> list[str]:
    """Fixes that quote the weights computed from the measured counts."""
    present = counts > 0
    k = int(present.sum())
    weights = np.where(present, counts.sum() / (k * np.maximum(counts, 1)), 0.0)
    fixes = []
    if binary_logit and len(counts) == 2 and counts[1] > 0:
        fixes.append(f"Weight the positive class in the loss: nn.BCEWithLogitsLoss(pos_weight=torch.tensor("
                     f"[{counts[0] / counts[1]:.3g}])) (negatives / positives in the training data).")
    else:
        listed = ", ".join(f"{w:.3g}" for w in weights)
        fixes.append("Weight the loss by inverse class frequency (total / (classes x count)): "
                     f"nn.CrossEntropyLoss(weight=torch.tensor([{listed}])).")
    fixes.append("Or re-balance what each epoch draws: per-sample weights 1 / count[label], then "
                 "DataLoader(dataset, batch_size=..., sampler=WeightedRandomSampler(weights, num_samples="
                 "len(weights), replacement=True)) (and no shuffle=True).")
    fixes.append("Judge the model with metrics that weigh every class: balanced accuracy, macro-averaged F1, "
                 "per-class recall (sklearn.metrics.classification_report), and tune the decision threshold.")
    fixes += [f for f in lookup("class-imbalance").fixes if "more samples" in f]
    return fixes


class ClassImbalanceCheck(Check):
    """Classes are about equally frequent in what the model trains on (or the loss accounts for it).

    Counts the labels of the training split as one epoch of its sampler draws them
    (a weighted sampler that re-balances the classes passes), and of the held-out
    splits. Reports the ratio of the most to the least frequent class, the accuracy
    a model gets by always predicting the majority class (the number plain accuracy
    must be compared with), and loss weights or a sampler computed from the counts.
    """

    name = "class-imbalance"
    stage = Stage.DATA
    order = 10
    requires = ("classification",)
    emits = ("class-imbalance",)

    def run(self, ctx):
        train = m.train(ctx)
        if train is None or not train.has_classes:
            return []
        cfg = ctx.config.section("class_imbalance")
        k = m.classes(ctx, train)
        counts = np.asarray([m.scaled(c, train) for c in train.class_counts(k)])
        present = counts > 0
        if present.sum() < 2:
            return []
        top, low = counts.max(), counts[present].min()
        ratio = float(top / low)
        missing = [int(c) for c in np.flatnonzero(~present)] if ctx.spec.num_classes else []
        if missing:
            severity, confidence = Severity.WARNING, 0.9
        elif ratio >= float(cfg["ratio_warn"]):
            severity = Severity.WARNING
            confidence = min(0.95, 0.6 + 0.2 * math.log10(ratio / float(cfg["ratio_warn"])))
        elif ratio >= float(cfg["ratio_info"]):
            severity, confidence = Severity.INFO, 0.5
        else:
            return []
        weighted = _loss_weighted(ctx.spec.loss_fn)
        if weighted and severity is Severity.WARNING and not missing:
            severity, confidence = Severity.INFO, 0.4

        majority = int(np.argmax(counts))
        share = float(top / counts.sum())
        rare = int(np.flatnonzero(present)[np.argmin(counts[present])])
        title = (f"class {rare} is {ratio:.0f}x rarer than class {majority} in the training data"
                 if not missing else f"classes {missing} never occur in the training data")
        evidence = [f"training labels{words.sampled_note(train)}: {_counts_text(counts, int(cfg['classes_shown']))} "
                    f"(most / least frequent = {ratio:.1f})"]
        rare_classes = [int(c) for c in np.flatnonzero(present & (counts * float(cfg["ratio_warn"]) <= top))] or [rare]
        rare_share = float(counts[rare_classes].sum() / counts.sum())
        named = f"class {rare_classes[0]} is" if len(rare_classes) == 1 else \
            f"classes {', '.join(map(str, rare_classes[:6]))}{', ...' if len(rare_classes) > 6 else ''} are"
        evidence.append(f"{named} {rare_share:.1%} of the training samples: a model that never predicts "
                        f"{'it' if len(rare_classes) == 1 else 'them'} loses at most {rare_share:.1%} accuracy, so "
                        "plain accuracy and the average loss barely reward learning "
                        f"{'it' if len(rare_classes) == 1 else 'them'}")
        if share > 0.5:
            held_share = []
            for held in m.held_out(ctx):
                if held.has_classes:
                    hc = held.class_counts(k)
                    if hc.sum() > 0:
                        held_share.append(f"{hc[majority] / hc.sum():.2f} on {held.split}")
            evidence.append(f"always predicting class {majority} scores accuracy {share:.2f} on the training data"
                            + (f" ({', '.join(held_share)})" if held_share else "")
                            + f": the number any accuracy must be compared with (its balanced accuracy is "
                              f"{1 / int(present.sum()):.2f})")
        if missing:
            evidence.append(f"the spec declares {k} classes; a model never shown classes {missing} cannot learn them")
        if weighted:
            evidence.append(weighted + ", which compensates for the imbalance")
        if train.draws.max() > 1:
            evidence.append("counts are per epoch as the loader's sampler draws them (it repeats some samples)")
        binary = isinstance(ctx.spec.loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss))
        metrics = {"imbalance_ratio": ratio, "majority_class": majority, "majority_share": share,
                   "minority_class": rare, "minority_share": rare_share,
                   "class_counts": ", ".join(words.number(c) for c in counts),
                   "missing_classes": ", ".join(map(str, missing))}
        return [self.finding("class-imbalance", severity, confidence, title=title, evidence=evidence,
                             fixes=imbalance_fixes(counts, binary), metrics=metrics, location=words.location())]
