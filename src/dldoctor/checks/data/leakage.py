"""The train-val-leakage check: do validation or test samples also appear in the training data?"""

from __future__ import annotations

from dldoctor.api import Check, Severity, Stage, lookup
from dldoctor.api.measure import data as m
from dldoctor.api.read import data as words


def _words(held, train) -> str:
    if held.index_word == train.index_word:
        return held.index_word
    return f"{held.index_word} = training {train.index_word}"


def _pairs(held, train, positions, partners, limit: int) -> str:
    return ", ".join(f"{int(held.rows[p])} = {int(train.rows[q])}" for p, q in zip(positions[:limit], partners[:limit]))


class LeakageCheck(Check):
    """Validation and test samples are not copies of training samples.

    Hashes every sample's input bytes to find exact copies across splits, and
    searches each held-out sample's nearest training sample in standardised feature
    space for near copies (re-encoded, slightly shifted or noised versions). Reports
    the share of each held-out split that is copied, with sample indices: the
    held-out score on those rows measures memory, not generalisation. For
    low-dimensional categorical inputs, where identical inputs recur naturally, only
    the excess over the training split's own rate of repeats counts.
    """

    name = "train-val-leakage"
    stage = Stage.DATA
    order = 40
    emits = ("train-val-leakage",)

    def run(self, ctx):
        train = m.train(ctx)
        dups = m.duplicates(ctx)
        if train is None or dups is None:
            return []
        cfg = ctx.config.section("leakage")
        findings = []
        held_by_name = {h.split: h for h in m.held_out(ctx)}
        for overlap in dups.overlaps:
            held = held_by_name[overlap.split]
            # A held-out row's twin is only found when the twin was read: scale by the
            # share of the training split that was read.
            read_share = train.n / m.split_size(train)
            fraction = min(1.0, overlap.fraction / max(read_share, 1e-9))
            judged = fraction - dups.train_internal if dups.discrete else fraction
            if judged < float(cfg["fraction_info"]):
                continue
            severity = Severity.WARNING if judged >= float(cfg["fraction_warn"]) else Severity.INFO
            confidence = min(0.95, 0.6 + judged) if severity is Severity.WARNING else 0.4
            shown = int(cfg["pairs_shown"])
            exact_n, near_n = len(overlap.exact), len(overlap.near)
            title = f"{fraction:.0%} of the {overlap.split} samples are copies of training samples"
            evidence = []
            if exact_n:
                evidence.append(f"{exact_n} of {held.n} {overlap.split} samples read ({overlap.exact_fraction:.1%}) "
                                f"have inputs identical to a training sample (hash of the input bytes); "
                                f"{overlap.split} = train ({_words(held, train)}): "
                                f"{_pairs(held, train, overlap.exact, overlap.exact_partner, shown)}")
            if near_n and overlap.near_excess > 0:
                evidence.append(
                    f"{near_n} of {overlap.near_checked} {overlap.split} samples searched have a training sample "
                    f"more than {1 / dups.max_ratio:.0f}x closer than any other (and within {dups.max_distance:g} "
                    f"training standard deviations per feature, root mean square): near copies, about "
                    f"{overlap.near_excess:.1%} of those searched beyond what similar-but-distinct samples give; "
                    f"{overlap.split} = train: {_pairs(held, train, overlap.near, overlap.near_partner, shown)}")
            if read_share < 1:
                evidence.append(f"{train.n} of the {m.split_size(train)} training samples were read, so the share "
                                f"found ({overlap.fraction:.1%}) is scaled up to {fraction:.1%}")
            if overlap.same_label is not None:
                evidence.append(f"{overlap.same_label:.0%} of the copies carry the same label as their training "
                                "twin: the model is scored on samples it was trained on")
            if dups.discrete:
                evidence.append(f"the inputs are low-dimensional and discrete: {dups.train_internal:.1%} of the "
                                "training samples have an identical twin inside the training data, so only the excess "
                                f"({judged:.1%}) is counted as leakage")
            fixes = [f"Remove the copied rows from the {overlap.split} set ({held.index_word}s "
                     f"{words.index_list(held, overlap.exact if exact_n else overlap.near, 20)}), or de-duplicate the "
                     "whole data set by input before splitting it.",
                     *lookup("train-val-leakage").fixes]
            metrics = {"split": overlap.split, "leaked_fraction": fraction, "exact_copies": exact_n,
                       "near_copies": near_n, "near_copy_share": overlap.near_excess, "rows_read": held.n,
                       "same_label": overlap.same_label if overlap.same_label is not None else ""}
            findings.append(self.finding("train-val-leakage", severity, confidence, title=title, evidence=evidence,
                                         fixes=fixes, metrics=metrics, location=words.location(overlap.split)))
        return findings
