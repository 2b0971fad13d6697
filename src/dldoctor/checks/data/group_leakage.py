"""The train-val-leakage check by subject: do held-out samples come from subjects seen in training?"""

from __future__ import annotations

import numpy as np

from dldoctor.api import Check, Severity, Stage
from dldoctor.api.measure import data as m
from dldoctor.api.read import data as words

_SPLITTERS = ("sklearn.model_selection.GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0)"
              ".split(X, y, groups) gives group-disjoint train/validation indices; GroupKFold(n_splits=5) (or "
              "StratifiedGroupKFold, which keeps the class balance) does the same for cross-validation.")


def _reevaluate(split: str) -> str:
    return (f"Re-evaluate: train again on the group-disjoint split and report that {split} score; the earlier one "
            "was partly measured on subjects the model had been trained on, and expect it to drop.")


def _shared_list(overlap, shown: int, split: str) -> str:
    named = ", ".join(f"group {g.name} ({g.held_rows} {split} / {g.train_rows} training samples)"
                      for g in overlap.shared[:shown])
    more = f", ... ({overlap.shared_count - shown} more)" if overlap.shared_count > shown else ""
    return named + more


class GroupLeakageCheck(Check):
    """Validation and test samples come from subjects (patients, users, recordings) not seen in training.

    With the spec's ``groups`` (one subject ID per sample, per split), counts the
    subjects each held-out split shares with training and the share of its samples
    they hold: an exact answer. Without them, looks for the trace subjects leave in
    the data: tight clusters of training samples, far tighter than their classes,
    that held-out samples fall inside as often as training samples do (a split by
    sample) rather than almost never (a split by subject); reported as a hint.
    """

    name = "group-leakage"
    stage = Stage.DATA
    order = 41
    emits = ("train-val-leakage",)

    def run(self, ctx):
        cfg = ctx.config.section("group_leakage")
        findings = []
        overlaps = m.group_overlaps(ctx)
        exact = {o.split for o in overlaps or ()}
        for overlap in overlaps or ():
            if overlap.shared_count:
                findings.append(self._exact(ctx, overlap, cfg))
        rest = [h.split for h in m.held_out(ctx) if h.split not in exact]
        if rest and cfg["hint"]:
            findings += self._hint(ctx, rest, cfg)
        return findings

    def _exact(self, ctx, overlap, cfg):
        held = next(h for h in m.held_out(ctx) if h.split == overlap.split)
        split, share = overlap.split, overlap.share
        severity = Severity.WARNING if share >= float(cfg["fraction_warn"]) else Severity.INFO
        shown = int(cfg["groups_shown"])
        title = (f"{share:.0%} of the {split} samples belong to {overlap.shared_count} group"
                 f"{'s' if overlap.shared_count != 1 else ''} that also appear in training")
        evidence = [
            f"{overlap.shared_count} of the {overlap.groups} groups (the spec's groups) in the {split} split also "
            f"have samples in the training split ({overlap.train_groups} groups there): "
            f"{_shared_list(overlap, shown, split)}",
            f"{len(overlap.positions)} of the {overlap.rows} {split} samples read ({share:.1%}) belong to them: the "
            f"model is scored on subjects it was trained on, so the {split} score says little about new subjects "
            f"(rows by {held.index_word}: {words.index_list(held, overlap.positions, 12)})",
        ]
        train = m.train(ctx)
        for sample, name in ((train, "training"), (held, split)):
            note = words.sampled_note(sample) if sample is not None else ""
            if note:
                evidence.append(f"groups counted over the {name} rows read{note}")
        metrics = {"split": split, "method": "groups", "leaked_fraction": share, "shared_groups": overlap.shared_count,
                   "held_out_groups": overlap.groups, "train_groups": overlap.train_groups, "rows_read": overlap.rows,
                   "shared_rows": len(overlap.positions)}
        return self.finding("train-val-leakage", severity, 0.9, title=title, evidence=evidence,
                            fixes=["Split by subject, not by sample: " + _SPLITTERS, _reevaluate(split)],
                            metrics=metrics,
                            location=words.location(split))

    def _hint(self, ctx, splits, cfg):
        dups = m.duplicates(ctx)
        if dups is not None and dups.discrete:
            return []  # few distinct values on few features: identical rows recur, clusters are natural
        found = m.tight_clusters(ctx)
        train = m.train(ctx)
        if found is None or train is None or found.clusters < int(cfg["min_clusters"]):
            return []
        rate = found.random_split_rate
        if rate < float(cfg["structure_info"]):
            return []
        findings = []
        for occ in found.held_out:
            if occ.split not in splits or occ.searched == 0:
                continue
            held = next(h for h in m.held_out(ctx) if h.split == occ.split)
            like_train = occ.inside / rate
            if like_train < float(cfg["occupancy_min"]):
                continue
            strong = rate >= float(cfg["structure_warn"])
            severity = Severity.WARNING if strong else Severity.INFO
            confidence = round(min(0.8, 0.4 + 0.4 * min(1.0, like_train) * rate), 2) if strong else 0.35
            split = occ.split
            examples = "; ".join(
                f"{split} row {int(held.rows[q])} with training rows {words.index_list(train, np.asarray(members), 6)}"
                for q, members in occ.examples)
            evidence = [
                f"the training data form tight clusters, far tighter than their classes: {found.clusters:.0f} "
                f"clusters of a median {found.cluster_size:.0f} samples in each half of the {found.rows} training "
                f"rows searched, which come near anything else only at {found.persistence:.1f}x the distance at "
                "which they formed; samples of one patient, user, recording or speaker look like this",
                f"{occ.inside:.0%} of the {occ.searched} {split} samples searched fall inside one of them; a random "
                f"half of the training rows falls inside the other half's clusters at {rate:.0%} (what a split by "
                "sample gives), where a split by subject leaves held-out samples outside the training clusters "
                f"(0-13% inside on data split by subject): the {split} split behaves like a split by sample "
                f"({like_train:.0%} of that rate)",
            ]
            if examples:
                word = held.index_word if held.index_word == train.index_word else "index"
                evidence.append(f"for example (by {word}) {examples}")
            evidence.append("without the spec's groups this is a reading of the data's geometry: tight natural "
                            "sub-types of a class look the same; give groups to measure it exactly")
            fixes = [
                "If several samples come from one subject (patient, user, session, recording, speaker, source "
                "image), split by subject, not by sample: " + _SPLITTERS,
                'Give dldoctor the subject of each sample to measure the overlap exactly: "groups": {"train": '
                f'train_subject_ids, "{split}": {split}_subject_ids}} in dldoctor_spec().',
                _reevaluate(split),
            ]
            metrics = {"split": split, "method": "tight-clusters", "inside_share": occ.inside,
                       "random_split_rate": rate, "like_random_split": like_train, "clusters": found.clusters,
                       "cluster_size": found.cluster_size, "persistence": found.persistence,
                       "rows_searched": occ.searched}
            title = (f"{occ.inside:.0%} of the {split} samples sit inside tight clusters of training samples: "
                     "the same subjects are likely on both sides of the split")
            findings.append(self.finding("train-val-leakage", severity, confidence, title=title, evidence=evidence,
                                         fixes=fixes, metrics=metrics, location=words.location(split)))
        return findings
