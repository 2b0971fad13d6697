"""Which subjects the held-out splits share with training, from the spec's ``groups``.

A subject (patient, user, recording session, speaker) whose samples sit on both
sides of a split lets the model be scored on someone it was trained on: its
personal signature is learned, and the held-out score no longer says how the model
does on new subjects. With one group ID per sample the overlap is a set
intersection, counted over the rows each split's sample read (every row of a split
up to ``data.max_samples``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.groups import HINT, check_mapping, dataset_length, id_list
from dldoctor.probes.data.sample import SplitSample


@dataclasses.dataclass(frozen=True)
class SharedGroup:
    """One group ID found in training and in a held-out split, with its rows read in each."""

    name: str
    held_rows: int
    train_rows: int


@dataclasses.dataclass(frozen=True)
class GroupOverlap:
    """The groups a held-out split shares with the training split.

    Attributes:
        split: "val" or "test".
        rows: held-out rows read.
        groups: distinct groups among them.
        train_groups: distinct groups among the training rows read.
        shared: the shared groups, most held-out rows first.
        share: the share of the held-out split (as one epoch draws it) that belongs
            to a shared group.
        positions: positions (in the held-out sample) of the rows in shared groups.
    """

    split: str
    rows: int
    groups: int
    train_groups: int
    shared: tuple[SharedGroup, ...]
    share: float
    positions: np.ndarray

    @property
    def shared_count(self) -> int:
        return len(self.shared)


def spec_groups(ctx) -> Mapping[str, Any] | None:
    """The spec's ``groups`` as a validated mapping (a callable is called once), or None.

    Raises:
        EntrypointError: the callable raised or returned something that is not a
            valid ``groups`` mapping.
    """
    value = ctx.spec.groups
    if value is None:
        return None
    if callable(value) and not isinstance(value, Mapping):
        try:
            value = value()
        except Exception as exc:
            raise ctx.user_error("the spec's groups function", exc, hint=HINT) from None
    check_mapping(value, {s: getattr(ctx.spec, f"{s}_loader", None) for s in ("train", "val", "test")})
    return value


def sample_ids(ctx, sample: SplitSample, ids: Any) -> list[Any]:
    """The group ID of every row of ``sample``, checked against the split's length.

    Raises:
        EntrypointError: the IDs do not cover the split's dataset (or its samples, for
            a loader read in its own order).
    """
    values = id_list(sample.split, ids)
    where = f"spec key 'groups'[{sample.split!r}]"
    if sample.by_index:
        expected = dataset_length(ctx.loader(sample.split))
        if expected is not None and len(values) != expected:
            raise EntrypointError(f"{where} has {len(values)} IDs, but the {sample.split}_loader's dataset has "
                                  f"{expected} samples: give one ID per sample, in dataset index order", hint=HINT)
    elif not sample.sampled and len(values) != sample.n:
        raise EntrypointError(f"{where} has {len(values)} IDs, but the {sample.split}_loader yields {sample.n} "
                              "samples: give one ID per sample, in the order the loader yields them", hint=HINT)
    top = int(sample.rows.max()) if sample.n else -1
    if top >= len(values):
        raise EntrypointError(f"{where} has {len(values)} IDs, but the {sample.split}_loader reaches sample index "
                              f"{top}: give one ID per sample of the split", hint=HINT)
    return [values[int(r)] for r in sample.rows]


def _label(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def group_overlap(train: SplitSample, train_ids: list[Any], held: SplitSample, held_ids: list[Any]) -> GroupOverlap:
    """The groups ``held`` shares with ``train``: a set intersection of the rows' IDs."""
    train_count: dict[Any, int] = {}
    for g in train_ids:
        train_count[g] = train_count.get(g, 0) + 1
    held_count: dict[Any, int] = {}
    for g in held_ids:
        held_count[g] = held_count.get(g, 0) + 1
    shared = sorted((g for g in held_count if g in train_count), key=lambda g: (-held_count[g], _label(g)))
    inside = np.asarray([g in train_count for g in held_ids], dtype=bool)
    weights = held.draws if len(held.draws) == held.n else np.ones(held.n)
    share = float(weights[inside].sum() / max(weights.sum(), 1e-12)) if held.n else 0.0
    return GroupOverlap(split=held.split, rows=held.n, groups=len(held_count), train_groups=len(train_count),
                        shared=tuple(SharedGroup(_label(g), held_count[g], train_count[g]) for g in shared),
                        share=share, positions=np.flatnonzero(inside))
