"""The label-noise check: do a notable share of the training labels look wrong?"""

from __future__ import annotations

import numpy as np

from dldoctor.api import Check, Severity, Stage, lookup
from dldoctor.api.measure import data as m
from dldoctor.api.read import data as words


def _pairs_text(joint: np.ndarray, shown: int) -> str:
    off = joint.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None)[:shown]
    parts = []
    for flat in order:
        i, j = np.unravel_index(flat, off.shape)
        if off[i, j] >= 1:
            parts.append(f"labelled {i} but looks like {j}: about {off[i, j]:.0f}")
    return "; ".join(parts)


class LabelNoiseCheck(Check):
    """Training labels agree with what the inputs predict, apart from a small share.

    Fits cheap models (logistic regression, nearest neighbours) on the flattened
    training inputs (and, in ``--profile thorough``, the user's own model briefly on
    each fold), takes their out-of-sample class probabilities, and finds the
    samples whose given label they confidently contradict (confident learning;
    cleanlab's implementation when installed). Reports the estimated fraction of
    wrong labels, the most common confusions and the most suspicious samples. Stays
    silent when the cheap models cannot predict the labels well enough to judge them
    (hard inputs such as natural images), and adds identical training inputs that
    carry different labels.
    """

    name = "label-noise"
    stage = Stage.DATA
    order = 30
    requires = ("classification",)
    emits = ("label-noise",)

    def run(self, ctx):
        train = m.train(ctx)
        if train is None or not train.has_classes:
            return []
        cfg = ctx.config.section("label_noise")
        evidence: list[str] = []
        severity: Severity | None = None
        confidence = 0.0
        metrics: dict = {}
        fixes: list[str] = []
        title = ""
        report = m.label_noise(ctx) if train.n >= int(cfg["min_samples"]) else None
        if report is not None:
            noise = report.issues.noise_fraction
            judged = (report.skill >= float(cfg["min_skill"]) and report.flag_confidence >= float(cfg["min_confidence"])
                      and report.confident_disagreement >= float(cfg["min_confident_disagreement"])
                      and report.local_confirmation >= float(cfg["min_local_confirmation"]))
            if judged and noise >= float(cfg["noise_info"]):
                severity = Severity.WARNING if noise >= float(cfg["noise_warn"]) else Severity.INFO
                confidence = min(0.9, 0.45 + noise + 0.3 * report.flag_confidence) \
                    if severity is Severity.WARNING else 0.4
                flagged = report.rows[report.issues.flagged]
                title = f"about {noise:.0%} of the training labels look wrong"
                evidence.append(
                    f"confident learning on out-of-sample predictions of {report.model} ({report.rows.size} "
                    f"training samples, {ctx.config.get('data.folds')}-fold): an estimated {noise:.1%} of the labels "
                    f"are wrong; {len(flagged)} samples flagged ({report.issues.method})")
                evidence.append(
                    f"the model predicts the given labels with out-of-sample accuracy {report.accuracy:.2f}; "
                    f"the flagged samples it confidently assigns to another class (median probability "
                    f"{np.median(report.probs[report.issues.flagged, report.issues.suggested]):.2f})")
                evidence.append(f"even among the quarter of samples the model is surest about, "
                                f"{report.confident_disagreement:.0%} carry another label: wrong labels, not only "
                                "ambiguous samples near a class boundary")
                evidence.append(f"{report.local_confirmation:.0%} of the flagged samples also disagree with most of "
                                "their nearest neighbours' labels: isolated labels, not a region the cheap model "
                                "gets wrong")
                pairs = _pairs_text(report.issues.joint, int(cfg["pairs_shown"]))
                if pairs:
                    evidence.append("most common confusions: " + pairs)
                shown = int(cfg["samples_shown"])
                listed = ", ".join(
                    f"{int(train.rows[r])}: {int(train.labels[r])} -> {int(s)}"
                    for r, s in zip(flagged[:shown], report.issues.suggested[:shown]))
                evidence.append(f"most suspicious samples ({train.index_word}: given label -> likely label): {listed}")
                fixes.append(f"Look at the flagged samples first ({train.index_word} "
                             f"{words.index_list(train, flagged, 20)}): fix their labels or drop them, "
                             "then train again.")
                metrics.update(noise_fraction=noise, flagged=len(flagged), model=report.model,
                               model_accuracy=report.accuracy, model_skill=report.skill,
                               confident_disagreement=report.confident_disagreement,
                               local_confirmation=report.local_confirmation,
                               flagged_indices=", ".join(str(int(train.rows[r])) for r in flagged[:50]))
        dups = m.duplicates(ctx)
        if dups is not None and dups.conflicts:
            share = dups.conflicting_rows / max(1, train.n)
            grade = (Severity.WARNING if share >= float(cfg["conflict_warn"]) else
                     Severity.INFO if share >= float(cfg["conflict_info"]) else None)
            if grade is not None:
                if severity is None or (grade is Severity.WARNING and severity is Severity.INFO):
                    severity, confidence = grade, max(confidence, 0.85 if grade is Severity.WARNING else 0.4)
                    title = title or (f"{dups.conflicting_rows} training samples are identical inputs "
                                      "with different labels")
                example = "; ".join("{" + ", ".join(f"{int(train.rows[p])}: label {int(train.labels[p])}"
                                                    for p in g[:3]) + "}" for g in dups.conflicts[:3])
                evidence.append(f"{len(dups.conflicts)} groups of identical training inputs carry different labels "
                                f"({dups.conflicting_rows} samples, {share:.1%} of those read); at most one label per "
                                f"group can be right. Examples ({train.index_word}: label): {example}")
                fixes.insert(0, "Give identical inputs one label (or drop the duplicates): de-duplicate the training "
                                "data by input before training.")
                metrics["conflicting_duplicates"] = dups.conflicting_rows
        if severity is None:
            return []
        fixes += [f for f in lookup("label-noise").fixes if f not in fixes]
        return [self.finding("label-noise", severity, confidence, title=title, evidence=evidence, fixes=fixes,
                             metrics=metrics, location=words.location())]
