"""The spec's ``groups``: the subject (patient, user, recording, speaker) of every sample, per split.

Samples of one subject resemble each other far more than samples of different
subjects do, so a split that puts one subject on both sides scores the model on
people it has already seen. With ``groups`` the train-val-leakage check tells
exactly which subjects are shared; this module validates the value and turns each
split's IDs into a plain list.

``groups`` is a dict ``{"train": ids, "val": ids, "test": ids}`` (``"train"`` and at
least one held-out split), or a zero-argument callable returning one. Each ``ids``
holds one hashable ID per sample (a list, tuple, NumPy array, pandas Series or 1-D
tensor), in the order of the split's ``loader.dataset`` indices (for a loader that
is not a ``DataLoader`` over an indexable dataset: the order in which it yields its
samples). This module does not import torch at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dldoctor.core.errors import EntrypointError

SPLITS = ("train", "val", "test")

HINT = ('"groups": {"train": train_subject_ids, "val": val_subject_ids},   '
        "# one ID per sample, in the order of each split's dataset")


def _fail(problem: str) -> EntrypointError:
    return EntrypointError(problem, hint=HINT)


def _length(key: str, ids: Any) -> int:
    """The number of IDs in ``ids``, refusing what is not one flat sequence of IDs."""
    if isinstance(ids, (str, bytes, Mapping)) or not hasattr(ids, "__len__") or not hasattr(ids, "__iter__"):
        raise _fail(f"spec key 'groups'[{key!r}] must be a sequence of group IDs (one per sample: a list, "
                    f"NumPy array or 1-D tensor), got {type(ids).__name__}")
    shape = getattr(ids, "shape", None)
    if shape is not None and len(tuple(shape)) != 1:
        raise _fail(f"spec key 'groups'[{key!r}] must hold one ID per sample (1-D), got shape {tuple(shape)}")
    return len(ids)


def check_groups(value: Any, loaders: Mapping[str, Any]) -> None:
    """Validate the spec's ``groups`` as far as it can be without reading data.

    ``loaders`` maps split names to the spec's loaders (None where absent). A
    callable is called later, when the data checks need it (it may be costly).

    Raises:
        EntrypointError: an unknown split name, a split without a loader, a value
            that is not one ID per sample, or a length that differs from the
            split's dataset.
    """
    if callable(value) and not isinstance(value, Mapping):
        return
    check_mapping(value, loaders)


def check_mapping(value: Any, loaders: Mapping[str, Any]) -> None:
    """The checks of :func:`check_groups` on a mapping (what a callable returned, too)."""
    if not isinstance(value, Mapping):
        raise _fail(f"spec key 'groups' must be a dict of split name -> group IDs (or a function returning one), "
                    f"got {type(value).__name__}")
    unknown = [k for k in value if k not in SPLITS]
    if unknown:
        raise _fail(f"spec key 'groups' names an unknown split {unknown[0]!r}: the splits are "
                    + ", ".join(repr(s) for s in SPLITS))
    if "train" not in value or not any(k in value for k in SPLITS[1:]):
        raise _fail("spec key 'groups' needs the training split's IDs and those of at least one held-out split "
                    f"('val' or 'test'); it has {', '.join(repr(k) for k in value) or 'none'}")
    for key, ids in value.items():
        loader = loaders.get(key)
        if loader is None:
            raise _fail(f"spec key 'groups' gives IDs for {key!r}, but the spec has no {key}_loader")
        n = _length(key, ids)
        expected = dataset_length(loader)
        if expected is not None and n != expected:
            raise _fail(f"spec key 'groups'[{key!r}] has {n} IDs, but the {key}_loader's dataset has {expected} "
                        "samples: give one ID per sample of the dataset, in index order")


def dataset_length(loader: Any) -> int | None:
    """``len(loader.dataset)`` for a ``DataLoader`` over a sized, indexable dataset, else None.

    A factory (a callable loader) and iterable datasets give None: their length is
    checked against the samples read instead.
    """
    import torch

    if not isinstance(loader, torch.utils.data.DataLoader):
        return None
    if isinstance(loader.dataset, torch.utils.data.IterableDataset):
        return None
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        return None


def id_list(key: str, ids: Any) -> list[Any]:
    """The IDs of one split as a list of plain Python values (tensors and arrays converted).

    Raises:
        EntrypointError: an ID that cannot serve as a group key (unhashable, e.g. a list).
    """
    _length(key, ids)
    tolist = getattr(ids, "tolist", None)
    values = tolist() if callable(tolist) else list(ids)
    if not isinstance(values, Sequence):
        raise _fail(f"spec key 'groups'[{key!r}] must be a sequence of group IDs, got {type(ids).__name__}")
    for v in values:
        try:
            hash(v)
        except TypeError:
            raise _fail(f"spec key 'groups'[{key!r}] holds a {type(v).__name__} ({v!r}); a group ID must be a "
                        "number or a string (one per sample)") from None
    return list(values)
