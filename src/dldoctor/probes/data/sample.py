"""Read a split through the user's loader: a capped, uniform sample of its rows as plain arrays.

A ``DataLoader`` over a map-style dataset is read by index: one pass of its sampler
gives the indices the model sees in an epoch (a ``SubsetRandomSampler`` keeps only its
subset, a ``WeightedRandomSampler`` repeats what it over-samples), a seeded uniform
sample of at most ``data.max_samples`` of them is drawn, and those items are fetched
and collated exactly as the loader does. Indices reported to the user are then
indices into ``loader.dataset``. Any other iterable is read in its own order up to the
cap, and positions in its output stand in for indices.

Per row the probe keeps a hash of the input bytes, a fixed-length feature vector
(:mod:`dldoctor.probes.data.features`), the label (a class index, or a value for
regression) and how often the sampler draws the row per epoch. Everything runs under
the run's seed with the loader's generators restored, and on CPU.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, Subset, TensorDataset, default_collate

from dldoctor.core.context import EMPTY_LOADER_HINT, FORWARD_HINT, BatchFormatError, restored_generators, unpack_batch
from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.loading.reader import LOADER_HINT, progress
from dldoctor.probes.data.features import FeatureLayout, Featurizer, OddBatchError, row_hashes
from dldoctor.probes.keys import DATA_SAMPLE
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import batch_size_of, iter_tensors, to_device

#: Items fetched and collated per read when reading by index.
_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class SplitSample:
    """A uniform sample of one split's rows, as plain arrays.

    Attributes:
        split: "train", "val" or "test".
        rows: per row, its index in ``loader.dataset`` (or its position in the
            loader's output when ``by_index`` is False).
        draws: per row, how many times one epoch of the sampler draws it (1 for a
            plain loader; more for rows a weighted sampler over-samples).
        hashes: per row, a 64-bit hash of its input bytes.
        features: per row, the fixed-length feature vector [n, d] (float32).
        labels: per row, the class index (``label_kind == "class"``) or target value
            (``"value"``); None when the targets are not one value per sample.
        population: rows one epoch of the loader yields (-1 when unknown).
        by_index: rows were fetched by dataset index (uniform sample) rather than
            read in the loader's order.
        layout: what the feature columns are.
    """

    split: str
    rows: np.ndarray
    draws: np.ndarray
    hashes: np.ndarray
    features: np.ndarray
    labels: np.ndarray | None
    label_kind: str
    population: int
    by_index: bool
    layout: FeatureLayout

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def sampled(self) -> bool:
        """Fewer rows were read than one epoch holds (or the total is unknown)."""
        return self.population < 0 or self.n < self.population

    @property
    def index_word(self) -> str:
        return "dataset index" if self.by_index else "position in the loader's output"

    @property
    def has_classes(self) -> bool:
        """Whether the labels are class indices (not regression targets, not missing)."""
        return self.labels is not None and self.label_kind == "class"

    @property
    def class_labels(self) -> np.ndarray:
        """``labels``, where the caller knows there are some (``has_classes``)."""
        if self.labels is None:
            raise DataReadError("the split has no labels")
        return self.labels

    @property
    def labelled(self) -> np.ndarray:
        """Rows with a class label: negative targets (-1, -100: "unlabelled", ignore_index) are left out."""
        if not self.has_classes:
            return np.zeros(self.n, dtype=bool)
        return np.asarray(self.class_labels >= 0)

    def class_counts(self, classes: int) -> np.ndarray:
        """Labelled rows per class as one epoch of the sampler draws them."""
        keep = self.labelled
        if not keep.any():
            return np.zeros(classes)
        return np.bincount(self.class_labels[keep], weights=self.draws[keep], minlength=classes)[:classes]


class DataReadError(Exception):
    """A split cannot be turned into samples (no tensors, unusable targets)."""


# -- which rows -------------------------------------------------------------------------
def _map_style(loader: Any) -> bool:
    """A DataLoader that batches items of a sized, indexable dataset (so rows can be fetched by index)."""
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return False
    if loader.batch_sampler is None:  # batch_size=None: the dataset returns whole batches
        return False
    dataset: Any = loader.dataset  # a Dataset need not have a length
    try:
        len(dataset)
    except TypeError:
        return False
    return True


def _drawn_indices(loader: DataLoader, limit: int) -> tuple[np.ndarray, bool]:
    """The dataset indices one epoch of the loader's sampler yields, in order, and whether that is all.

    A sampler without a length (possibly endless) is read up to ``limit`` indices.
    """
    batch_sampler: Any = loader.batch_sampler  # a sampler need not have a length
    try:
        len(batch_sampler)
        limit = -1
    except TypeError:
        pass
    drawn: list[int] = []
    for item in batch_sampler:
        if 0 <= limit <= len(drawn):
            return np.asarray(drawn, dtype=np.int64), False
        if isinstance(item, (list, tuple)):
            drawn.extend(int(i) for i in item)
        elif isinstance(item, torch.Tensor):
            drawn.extend(int(i) for i in item.reshape(-1).tolist())
        else:
            drawn.append(int(item))
    return np.asarray(drawn, dtype=np.int64), True


def _tensor_source(dataset: Any, index: np.ndarray) -> tuple[tuple[torch.Tensor, ...], np.ndarray] | None:
    """For a TensorDataset (possibly inside Subsets), its tensors and the mapped indices."""
    while isinstance(dataset, Subset):
        index = np.asarray(dataset.indices)[index]
        dataset = dataset.dataset
    if type(dataset) is TensorDataset:
        return dataset.tensors, index
    return None


def fetch_rows(loader: DataLoader, rows: np.ndarray, chunk_size: int = _CHUNK) -> Iterator[tuple[np.ndarray, Any]]:
    """Batches of the given dataset rows, in that order, collated as the loader collates them.

    Each item fetched reports :func:`~dldoctor.loading.reader.progress`: read
    through the guarded reader (``unit="item"``), the deadline is per item, not per chunk.
    """
    fast = loader.collate_fn is default_collate
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start:start + chunk_size]
        source = _tensor_source(loader.dataset, chunk) if fast else None
        if source is not None:
            tensors, mapped = source
            picked = torch.from_numpy(mapped)
            yield chunk, [t[picked] for t in tensors]
        else:
            items = []
            for i in chunk:
                items.append(loader.dataset[int(i)])
                progress()
            yield chunk, loader.collate_fn(items)


def _fetch_stream(ctx, split: str, loader: Any, cap: int) -> Iterator[tuple[np.ndarray, Any]]:
    position = 0
    for batch in ctx.read(split, loader, what=f"reading the {split}_loader"):
        size = batch_size_of(batch) or 0
        yield np.arange(position, position + size, dtype=np.int64), batch
        position += size
        if position >= cap:
            return


# -- what each row holds ----------------------------------------------------------------
@dataclasses.dataclass
class _Split:
    """How to take inputs and targets out of a batch, found on the first one."""

    target_path: tuple | None = None
    found: bool = False


def _leaves(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _leaves(item, path + (i,))
    elif isinstance(obj, dict):
        for k, item in obj.items():
            yield from _leaves(item, path + (k,))


def _find_target_path(ctx, batch: Any) -> tuple | None:
    """Where in a batch the spec's ``forward`` takes its targets from (by identity, then by value)."""
    model = ctx.fresh_model()
    model.eval()
    moved = to_device(batch, ctx.device)
    try:
        with torch.no_grad(), isolated_rng(ctx.seed):
            _, targets = ctx.forward_fn(model, moved)
    except Exception:  # a crash is the forward-pass check's business
        return None
    target = next(iter_tensors(targets), None)
    if target is None:
        return None
    for path, t in _leaves(moved):
        if t is target:
            return path
    target = target.detach().cpu()
    for path, t in _leaves(batch):
        if t.shape == target.shape and t.dtype == target.dtype and torch.equal(t.cpu(), target):
            return path
    return None


def _inputs_and_targets(ctx, batch: Any, how: _Split) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    if ctx.spec.forward is None:
        try:
            inputs, targets = unpack_batch(batch)
        except BatchFormatError as exc:
            raise EntrypointError(str(exc), hint=FORWARD_HINT) from None
        size = batch_size_of(batch) or 0
        leaves = [t for t in iter_tensors(inputs) if t.dim() > 0 and int(t.shape[0]) == size]
        return leaves, next(iter_tensors(targets), None)
    if not how.found:
        how.target_path, how.found = _find_target_path(ctx, batch), True
    size = batch_size_of(batch) or 0
    inputs, target = [], None
    for path, t in _leaves(batch):
        if path == how.target_path:
            target = t
        elif t.dim() > 0 and int(t.shape[0]) == size:
            inputs.append(t)
    return inputs, target


def _labels(targets: list[torch.Tensor], task: str) -> tuple[np.ndarray | None, str]:
    """One label per row and its kind ("class" or "value"), or (None, "") when the
    targets are not one label per sample (multi-label, several values, none found)."""
    if not targets:
        return None, ""
    t = torch.cat([x.detach().cpu().reshape(x.shape[0], -1) if x.dim() > 0 else x.reshape(1, 1) for x in targets])
    if t.shape[1] == 1:
        flat = t[:, 0]
        if not flat.is_floating_point():
            return flat.long().numpy(), "class"
        if task == "classification" and bool((flat == flat.round()).all()) and bool((flat >= 0).all()):
            return flat.long().numpy(), "class"
        return flat.double().numpy(), "value"
    if task == "classification" and t.is_floating_point() and bool((t >= 0).all()):
        sums = t.sum(1)
        if bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)):
            return t.argmax(1).numpy(), "class"  # one-hot or soft labels
    return None, ""


def read_split(ctx, split: str, max_samples: int, budget: int, buckets: int,
               max_seconds: float = float("inf")) -> SplitSample | None:
    """Read up to ``max_samples`` rows of ``split`` within about ``max_seconds`` (None without that loader)."""
    loader = ctx.loader(split)
    if loader is None:
        return None
    what = f"reading the {split}_loader"
    start = time.perf_counter()
    featurize = Featurizer(budget, buckets, ctx.seed)
    how = _Split()
    rows, draws, hashes, features, targets = [], [], [], [], []
    by_index = _map_style(loader)
    population = -1
    with isolated_rng(ctx.seed), restored_generators(loader):
        try:
            if by_index:
                drawn, complete = ctx.reader.call(split, lambda: _drawn_indices(loader, 10 * max_samples),
                                                  what=f"drawing the {split}_loader's indices")
                population = len(drawn) if complete else -1
                if len(drawn) > max_samples:
                    keep = np.random.default_rng(ctx.seed).choice(len(drawn), max_samples, replace=False)
                    drawn = drawn[np.sort(keep)]
                unique, counts = np.unique(drawn, return_counts=True)
                # Read in a random order, so that rows read before the time budget ends are
                # themselves a uniform sample.
                order = np.random.default_rng(ctx.seed + 1).permutation(len(unique))
                rows_order = unique[order]
                source: Iterator = ctx.read(split, loader, source=lambda: fetch_rows(loader, rows_order),
                                            what=what, unit="item")
                multiplicity = dict(zip(unique.tolist(), counts.tolist()))
            else:
                try:
                    population = len(loader.dataset)
                except (AttributeError, TypeError):
                    population = -1
                source = _fetch_stream(ctx, split, loader, max_samples)
                multiplicity = {}
            done = 0
            for index, batch in source:
                inputs, target = _inputs_and_targets(ctx, batch, how)
                if not inputs:
                    raise DataReadError("the batches hold no input tensor with one row per sample")
                take = min(len(index), max_samples - done)
                inputs = [t[:take] for t in inputs]
                index = index[:take]
                rows.append(index)
                draws.append(np.asarray([multiplicity.get(int(i), 1) for i in index], dtype=np.float64))
                hashes.append(row_hashes(inputs))
                features.append(np.nan_to_num(featurize(inputs).astype(np.float32, copy=False),
                                              nan=0.0, posinf=0.0, neginf=0.0))
                if target is not None:
                    targets.append(target[:take] if target.dim() > 0 else target)
                done += take
                ctx.report_reading(f"reading the {split}_loader", done, min(max_samples, population)
                                   if population > 0 else max_samples)
                if done >= max_samples or time.perf_counter() - start > max_seconds:
                    break
            else:
                if not by_index:  # the stream ended: every row was read
                    population = done
        except (EntrypointError, DataReadError, CheckIncomplete):
            raise
        except OddBatchError as exc:
            raise EntrypointError(f"the {split}_loader yields batches of different layouts: {exc}",
                                  hint="Make every batch hold the same inputs, with the same per-sample shape "
                                       "(pad variable-length inputs in the collate function).") from None
        except Exception as exc:
            raise ctx.user_error(what, exc, hint=LOADER_HINT) from None
    if not rows:
        raise EntrypointError(f"the {split}_loader yielded no samples", hint=EMPTY_LOADER_HINT)
    task = ctx.task
    labels, kind = _labels(targets, task) if len(targets) == len(rows) else (None, "")
    return SplitSample(split=split, rows=np.concatenate(rows), draws=np.concatenate(draws),
                       hashes=np.concatenate(hashes), features=np.concatenate(features), labels=labels,
                       label_kind=kind, population=population, by_index=by_index, layout=featurize.layout())


def split_sample(ctx, split: str) -> SplitSample | None:
    """The memoised sample of ``split`` (config section ``data``); shared by every data check."""
    cfg = ctx.config.section("data")

    def read() -> SplitSample | None:
        return read_split(ctx, split, int(cfg["max_samples"]), int(cfg["feature_budget"]), int(cfg["token_buckets"]),
                          float(cfg["max_read_seconds"]))

    return ctx.measure(DATA_SAMPLE.at(split), read)

