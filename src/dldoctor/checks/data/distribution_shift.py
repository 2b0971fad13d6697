"""The input-level distribution-shift check: do validation/test inputs and labels look like training ones?"""

from __future__ import annotations

import numpy as np

from dldoctor.api import Check, Severity, Stage, lookup
from dldoctor.api.measure import Shift, SplitSample, auc_null_se
from dldoctor.api.measure import data as m
from dldoctor.api.read import data as words


def _p(p: float) -> str:
    return "p < 1e-10" if p < 1e-10 else f"p = {p:.2g}"


def _entropy(freq: np.ndarray) -> float:
    p = freq[freq > 0]
    return float(-(p * np.log(p)).sum())


def _feature_lines(shift: Shift, held: SplitSample, shown: int) -> list[str]:
    order = np.argsort(-np.abs(shift.smd), kind="stable")[:shown]
    parts = []
    for j in order:
        if abs(shift.smd[j]) < 0.05:
            break
        ratio = shift.std_ratio[j]
        spread = f", spread x{ratio:.2g}" if np.isfinite(ratio) and abs(np.log(max(ratio, 1e-9))) > np.log(1.5) else ""
        parts.append(f"{held.layout.name(int(j))}: mean {shift.smd[j]:+.2f} std{spread} (KS {shift.ks[j]:.2f}, "
                     f"{_p(shift.ks_p[j])})")
    return parts


def _label_lines(train_freq: np.ndarray, held_freq: np.ndarray, shown: int) -> str:
    diff = held_freq - train_freq
    order = np.argsort(-np.abs(diff), kind="stable")[:shown]
    return ", ".join(f"class {c}: {train_freq[c]:.2f} -> {held_freq[c]:.2f}" for c in order
                     if abs(diff[c]) > 0.005)


class DistributionShiftCheck(Check):
    """Validation and test data come from the training data's distribution (inputs and labels).

    Compares each held-out split with the training split: per feature (and per image
    channel) the standardised mean difference and a Kolmogorov-Smirnov test, a
    domain classifier whose out-of-fold ROC AUC says how separable the splits are,
    and the class frequencies (or the targets, for regression). Names the most
    shifted features, and says when the pattern looks like a pre-processing step
    applied to one split only.
    """

    name = "data-shift"
    stage = Stage.DATA
    order = 50
    emits = ("distribution-shift",)

    def run(self, ctx):
        train = m.train(ctx)
        if train is None:
            return []
        cfg = ctx.config.section("distribution_shift")
        held_by_name = {h.split: h for h in m.held_out(ctx)}
        findings = []
        for shift in m.shifts(ctx):
            held = held_by_name[shift.split]
            found = self._judge(shift, train, held, cfg)
            if found is not None:
                findings.append(found)
        return findings

    def _judge(self, shift: Shift, train: SplitSample, held: SplitSample, cfg):
        split = shift.split
        issues: list[tuple[Severity, str]] = []
        evidence: list[str] = []
        fixes: list[str] = []
        # Tested against the AUC's spread when the splits are alike (z-test of AUC = 0.5).
        z = (shift.domain_auc - 0.5) / auc_null_se(shift.domain_rows, shift.domain_rows) if shift.domain_rows else 0.0
        separable = z >= float(cfg["min_z"])
        if separable and shift.domain_auc >= float(cfg["auc_info"]):
            grade = Severity.WARNING if shift.domain_auc >= float(cfg["auc_warn"]) else Severity.INFO
            issues.append((grade, f"a classifier tells {split} inputs from training inputs apart (AUC "
                                  f"{shift.domain_auc:.2f})"))
        evidence.append(f"domain classifier (logistic regression on the inputs' principal components and their "
                        f"squares, {shift.domain_rows} samples per split, out-of-fold): ROC AUC {shift.domain_auc:.2f} "
                        f"+- {shift.domain_auc_se:.2f} (0.5 = the splits cannot be told apart)")
        varying = np.abs(shift.smd) > 0
        moved = int(np.sum(np.abs(shift.smd) >= float(cfg["feature_smd"])))
        lines = _feature_lines(shift, held, int(cfg["features_shown"]))
        if lines:
            evidence.append(f"{moved} of {int(varying.sum())} varying features moved by at least "
                            f"{cfg['feature_smd']:g} standard deviations; most shifted: " + "; ".join(lines))
        if len(shift.channel_smd):
            evidence.append("mean shift per image channel (standard deviations): "
                            + ", ".join(f"channel {c}: {v:+.2f}" for c, v in enumerate(shift.channel_smd)))
        ratios = shift.std_ratio[np.isfinite(shift.std_ratio) & varying]
        rescaled = len(ratios) and abs(np.log(np.median(ratios))) > np.log(float(cfg["preprocess_std_ratio"]))
        if varying.any() and (moved >= 0.5 * varying.sum() or rescaled) and issues:
            fixes.append(f"Most features moved together (median spread ratio {np.median(ratios):.2g}x): the {split} "
                         "inputs look pre-processed differently from the training inputs. Apply exactly the same "
                         "transforms to every split, with normalisation statistics computed on the training split.")

        train_freq, held_freq = shift.train_freq, shift.held_freq
        if (shift.label_tvd is not None and shift.label_p is not None
                and train_freq is not None and held_freq is not None):
            unseen = [int(c) for c in np.flatnonzero((held_freq > 0) & (train_freq == 0))]
            absent = [int(c) for c in np.flatnonzero((train_freq > 0) & (held_freq == 0))]
            significant = shift.label_p < float(cfg["label_p"])
            if unseen:
                issues.append((Severity.WARNING, f"classes {unseen} occur in {split} but never in training"))
            elif significant and shift.label_tvd >= float(cfg["label_tvd_info"]):
                grade = Severity.WARNING if shift.label_tvd >= float(cfg["label_tvd_warn"]) else Severity.INFO
                # Held-out classes more even than the training ones (and inputs alike otherwise):
                # the gap is the training split's imbalance, which class-imbalance reports.
                if not issues and _entropy(held_freq) > _entropy(train_freq):
                    grade = Severity.INFO
                    evidence.append(f"the {split} classes are more evenly spread than the training ones: the "
                                    "difference is the training data's class imbalance")
                issues.append((grade, f"the class frequencies of {split} differ from training (total variation "
                                      f"{shift.label_tvd:.2f})"))
            if significant or unseen:
                shown = _label_lines(train_freq, held_freq, int(cfg["features_shown"]))
                evidence.append(f"class frequencies, training -> {split}: {shown}"
                                f" (total variation distance {shift.label_tvd:.2f}, chi-square {_p(shift.label_p)})")
            if unseen or (absent and significant):
                fixes.insert(0, "The splits hold different classes, as when data sorted by label is split without "
                                "shuffling: shuffle before splitting, stratified by label (sklearn.model_selection."
                                "train_test_split(..., shuffle=True, stratify=y)).")
        if (shift.target_smd is not None and shift.target_ks_p is not None
                and shift.target_ks_p < float(cfg["label_p"])
                and abs(shift.target_smd) >= float(cfg["target_smd_warn"])):
            issues.append((Severity.WARNING, f"the {split} targets are shifted by {shift.target_smd:+.2f} "
                                             "standard deviations"))
            evidence.append(f"target mean difference {shift.target_smd:+.2f} standard deviations "
                            f"(KS {_p(shift.target_ks_p)})")
        if not issues:
            return None
        warnings = [i for i in issues if i[0] is Severity.WARNING]
        severity = Severity.WARNING if warnings else Severity.INFO
        title = f"The {split} data differ from the training data: " + "; ".join(i[1] for i in (warnings or issues))
        confidence = min(0.95, 0.5 + (shift.domain_auc - 0.5)) if warnings else 0.4
        if train.sampled or held.sampled:
            evidence.append(f"measured on {train.n} training and {held.n} {split} samples")
        fixes += [f for f in lookup("distribution-shift").fixes if f not in fixes]
        metrics = {"split": split, "domain_auc": shift.domain_auc, "domain_auc_se": shift.domain_auc_se,
                   "features_moved": moved, "max_abs_smd": float(np.max(np.abs(shift.smd))) if len(shift.smd) else 0.0,
                   "label_tvd": shift.label_tvd if shift.label_tvd is not None else ""}
        return self.finding("distribution-shift", severity, confidence, title=title, evidence=evidence, fixes=fixes,
                            metrics=metrics, location=words.location(split))
