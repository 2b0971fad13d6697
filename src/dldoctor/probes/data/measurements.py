"""The data stage's shared measurements, memoised on the context (each is taken once per run)."""

from __future__ import annotations

from dldoctor.probes import keys
from dldoctor.probes.data.duplicates import Duplicates, find_duplicates
from dldoctor.probes.data.groups import GroupOverlap, group_overlap, sample_ids, spec_groups
from dldoctor.probes.data.noise import NoiseReport, measure_label_noise, noise_rows
from dldoctor.probes.data.sample import SplitSample, split_sample
from dldoctor.probes.data.shift import Shift, measure_shift
from dldoctor.probes.data.tight_clusters import TightClusters, find_tight_clusters
from dldoctor.probes.data.user_model import user_model_oof

HELD_OUT = ("val", "test")


def train(ctx) -> SplitSample | None:
    return split_sample(ctx, "train")


def held_out(ctx) -> list[SplitSample]:
    """The validation and test samples the spec has."""
    return [s for s in (split_sample(ctx, name) for name in HELD_OUT if ctx.has_split(name)) if s is not None]


def classes(ctx, *samples: SplitSample) -> int:
    """The number of classes: the spec's ``num_classes``, else one more than the largest label seen.

    (Not the model's output width: inferring it costs a traced forward pass, and a
    class no split contains cannot be counted anyway.)
    """
    seen = [int(s.class_labels.max()) + 1 for s in samples if s is not None and s.labelled.any()]
    return max([int(ctx.spec.num_classes or 0), *seen, 1])


def duplicates(ctx) -> Duplicates | None:
    def run():
        base = train(ctx)
        if base is None:
            return None
        cfg = ctx.config.section("leakage")
        return find_duplicates(base, held_out(ctx), float(cfg["near_distance"]), float(cfg["near_ratio"]),
                               int(cfg["near_queries"]), ctx.seed)

    return ctx.measure(keys.DUPLICATES, run)


def group_overlaps(ctx) -> list[GroupOverlap] | None:
    """The groups each held-out split shares with training, by the spec's ``groups`` (None without them);
    one per held-out split that has IDs."""
    def run():
        groups = spec_groups(ctx)
        base = train(ctx)
        if groups is None or base is None:
            return None
        train_ids = sample_ids(ctx, base, groups["train"])
        return [group_overlap(base, train_ids, held, sample_ids(ctx, held, groups[held.split]))
                for held in held_out(ctx) if held.split in groups]

    return ctx.measure(keys.GROUP_OVERLAPS, run)


def tight_clusters(ctx) -> TightClusters | None:
    """Tight clusters of training rows (subjects, without ``groups``) and the held-out rows inside them."""
    def run():
        base = train(ctx)
        if base is None:
            return None
        cfg = ctx.config.section("group_leakage")
        return find_tight_clusters(base, held_out(ctx), max_train_rows=int(cfg["max_train_rows"]),
                                   max_held_rows=int(cfg["max_held_rows"]),
                                   min_cluster_size=int(cfg["min_cluster_size"]),
                                   persistence=float(cfg["persistence"]),
                                   sub_class_share=float(cfg["sub_class_share"]),
                                   examples=int(cfg["examples_shown"]), seed=ctx.seed)

    return ctx.measure(keys.TIGHT_CLUSTERS, run)


def label_noise(ctx) -> NoiseReport | None:
    def run():
        base = train(ctx)
        if base is None:
            return None
        cfg = ctx.config.section("label_noise")
        k, folds = classes(ctx, base), int(ctx.config.get("data.folds"))
        extra = {}
        if cfg["user_model"] and base.labelled.any():
            # A fixed number of steps per fold (epochs, fewer for an expensive model);
            # the seconds are a safety limit that makes the check incomplete.
            rows = noise_rows(base, int(cfg["max_samples"]), ctx.seed)
            probs = user_model_oof(ctx, base, rows, k, folds, int(cfg["user_model_epochs"]),
                                   float(cfg["user_model_max_seconds"]), float(cfg["user_model_max_gflop"]))
            if probs is not None:
                extra["your model, trained briefly on each fold"] = probs
        return measure_label_noise(base, k, int(cfg["max_samples"]), int(cfg["dimensions"]), folds,
                                   int(cfg["neighbours"]), ctx.seed, bool(cfg["use_cleanlab"]), extra)

    return ctx.measure(keys.LABEL_NOISE, run)


def shifts(ctx) -> list[Shift]:
    def run():
        base = train(ctx)
        if base is None:
            return []
        cfg = ctx.config.section("distribution_shift")
        return [measure_shift(base, held, classes(ctx, base, held), int(cfg["domain_samples"]),
                              int(ctx.config.get("data.folds")), ctx.seed) for held in held_out(ctx)]

    return ctx.measure(keys.SHIFTS, run)


def scaled(count: float, sample: SplitSample) -> float:
    """A count in the sample scaled to the whole split (the sample is uniform over the epoch's draws)."""
    drawn = float(sample.draws.sum())
    if sample.population > 0 and 0 < drawn < sample.population:
        return count * sample.population / drawn
    return count


def split_size(sample: SplitSample) -> int:
    return sample.population if sample.population > 0 else sample.n
