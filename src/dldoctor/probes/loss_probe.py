"""What reaches the loss: the output's last operation, how the loss behaves, the labels.

Two measurements, each memoised on the context:

* :func:`measure_loss` runs the first training batch once more through a fresh copy
  of the model (same seed, so the same outputs as the traced step) and records
  what produced the output (the first autograd operation that is not a mere
  view, e.g. ``Softmax``), and how the user's loss behaves on it: which standard
  loss it reproduces (for a lambda or a custom function whose kind the name does
  not tell), whether the gradient on one sample's output depends on the *other*
  samples' targets (it does when shapes broadcast inside an element-wise loss),
  and the loss at a perfect prediction versus at the target mean.
* :func:`measure_labels` summarises the targets of the cached training batches
  and, when it is free to read (a ``TensorDataset`` or a dataset with a
  ``targets`` attribute, behind the default forward), of the whole training set.

Nothing but plain numbers leaves this module. The model copy is the probe's own;
the user's objects are not touched.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from dldoctor.core.loss_kinds import kind_of, loss_name
from dldoctor.probes.keys import LABEL_SUMMARY, LOSS_PROBE, TRAINED_OUTPUTS
from dldoctor.runtime.rng import isolated_rng

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.core.context import Context

#: Reference losses tried on a loss whose name says nothing, and the kind each reveals
#: (``core.loss_kinds`` vocabulary).
REFERENCE_LOSSES: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "cross_entropy": (F.cross_entropy, "logits"),
    "nll_loss": (F.nll_loss, "log-probs"),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, "binary-logits"),
}

#: Autograd operations that only move or copy values; the producer of an output is
#: the first operation behind these.
_VIEW_OPS = {
    "View", "UnsafeView", "Reshape", "ReshapeAlias", "Squeeze", "Unsqueeze", "Select", "Slice", "Clone",
    "Permute", "Transpose", "T", "Expand", "ToCopy", "Alias", "AsStrided", "Unbind", "Contiguous",
}

#: Relative tolerance for "the user's loss gives the same value as a reference loss".
MATCH_RTOL = 1e-4


@dataclasses.dataclass(frozen=True)
class LossProbe:
    """How the model's output and the user's loss meet, on the first training batch.

    Attributes:
        measured: False when the probe could not run (outputs or targets are not
            single tensors, or the forward raised); the other fields are then empty.
        output_shape, target_shape: shapes as given to the loss.
        output_dtype, target_dtype: their dtypes.
        output_op: the autograd operation that produced the output, view-like
            operations skipped (``Softmax``, ``Sigmoid``, ``LogSoftmax``, ``Addmm``...);
            "" when the output has no autograd history.
        matches: reference losses (``REFERENCE_LOSSES``) the user's loss reproduced at
            two points (the output and a perturbed copy); empty when the loss's name
            already says what it is, or nothing matched.
        target_mixing: max |change| of the gradient on sample 0's output when every
            *other* sample's target moves, relative to its size; ~0 for a loss that
            treats samples independently; None when not measurable.
        loss_at_perfect: the loss when the output equals the target exactly (only
            when both have the same number of elements), else None.
        loss_at_mean: the loss when every output is the target mean (float targets),
            else None.
        target_var: the population variance of the (float) targets, else None.
        loss_at_outputs: the loss at the model's outputs (float targets of as many
            elements as the outputs; the sign test), else None.
        loss_halfway: the loss half-way from the outputs to the targets, else None.
        grad_at_outputs, grad_at_perfect: the norm of d loss / d outputs at the model's
            outputs and at a perfect prediction, else None.
    """

    measured: bool
    output_shape: tuple[int, ...] = ()
    target_shape: tuple[int, ...] = ()
    output_dtype: str = ""
    target_dtype: str = ""
    output_op: str = ""
    matches: tuple[str, ...] = ()
    target_mixing: float | None = None
    loss_at_perfect: float | None = None
    loss_at_mean: float | None = None
    target_var: float | None = None
    loss_at_outputs: float | None = None
    loss_halfway: float | None = None
    grad_at_outputs: float | None = None
    grad_at_perfect: float | None = None


def loss_kind(name: str, matches: tuple[str, ...] = ()) -> tuple[str, str]:
    """``(kind, source)``: what the loss expects, from its name, else from measured behaviour.

    ``source`` is ``"name"``, ``"measured"`` or ``""`` (unknown). Two matching references
    (possible only when they agree on this output) leave the kind unknown.
    """
    if kind_of(name):
        return kind_of(name), "name"
    kinds = {REFERENCE_LOSSES[m][1] for m in matches if m in REFERENCE_LOSSES}
    if len(kinds) == 1:
        return kinds.pop(), "measured"
    return "", ""


def producing_op(t: torch.Tensor) -> str:
    """The first autograd operation behind ``t`` that is not a view or copy, without ``Backward0``."""
    fn = t.grad_fn
    for _ in range(64):  # a chain of views is short; the bound guards against odd graphs
        if fn is None:
            return ""
        name = type(fn).__name__
        base = name.split("Backward", 1)[0]
        if base not in _VIEW_OPS:
            return base
        fn = next((nf for nf, _ in fn.next_functions if nf is not None), None)
    return ""


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        v = float(value.detach())
        return v if math.isfinite(v) else None
    return None


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= MATCH_RTOL * max(1.0, abs(b))


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None


def _matches(loss_fn: Callable, out: torch.Tensor, tgt: torch.Tensor, gen: torch.Generator) -> tuple[str, ...]:
    """Reference losses that give the user's loss value at the output and at a perturbed output."""
    noisy = out + 0.5 * torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    found = []
    for ref_name, (ref, _kind) in REFERENCE_LOSSES.items():
        # The lambdas are called at once, inside the loop: the late binding B023 warns of cannot happen.
        if all(_close(_scalar(_try(lambda: loss_fn(o, tgt))), _scalar(_try(lambda: ref(o, tgt))))  # noqa: B023
               for o in (out, noisy)):
            found.append(ref_name)
    return tuple(found)


def _target_mixing(loss_fn: Callable, out: torch.Tensor, tgt: torch.Tensor) -> float | None:
    """Relative change of d loss / d output[0] when the targets of samples 1.. change."""
    if out.dim() == 0 or tgt.dim() == 0 or out.shape[0] < 2 or tgt.shape[0] < 2:
        return None
    moved = tgt.clone()
    moved[1:] = moved[1:] + 1  # a whole-unit shift keeps integer targets integral

    def grad_row0(t: torch.Tensor) -> torch.Tensor | None:
        with torch.enable_grad():
            o = out.detach().clone().requires_grad_(True)
            loss = loss_fn(o, t)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
                return None
            (g,) = torch.autograd.grad(loss, o, allow_unused=True)
        return None if g is None else g[0].detach().float()

    g1, g2 = _try(lambda: grad_row0(tgt)), _try(lambda: grad_row0(moved))
    if g1 is None or g2 is None or not (torch.isfinite(g1).all() and torch.isfinite(g2).all()):
        return None
    scale = float(torch.maximum(g1.abs().max(), g2.abs().max()))
    if scale == 0.0:
        return 0.0
    return float((g1 - g2).abs().max()) / scale


def _loss_and_grad(loss_fn: Callable, out: torch.Tensor, tgt: torch.Tensor) -> tuple[float, float] | None:
    """The loss at ``out`` and the norm of its gradient on ``out`` (None when not one finite number)."""
    with torch.enable_grad():
        o = out.detach().clone().requires_grad_(True)
        loss = loss_fn(o, tgt)
        value = _scalar(loss)
        if value is None or not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            return None
        (g,) = torch.autograd.grad(loss, o, allow_unused=True)
    norm = 0.0 if g is None else float(g.detach().float().norm())
    return (value, norm) if math.isfinite(norm) else None


def _sign_test(loss_fn: Callable, out: torch.Tensor, tgt: torch.Tensor) -> dict[str, float | None]:
    """The loss and its gradient at the outputs, half-way to the targets and at the targets themselves.

    Only for float targets with as many elements as the outputs (a regression, a
    similarity, a correlation); a perfect prediction is the targets in the output's shape.
    """
    empty: dict[str, float | None] = {"loss_at_outputs": None, "loss_halfway": None, "grad_at_outputs": None,
                                      "grad_at_perfect": None}
    if not tgt.is_floating_point() or tgt.numel() != out.numel():
        return empty
    perfect = tgt.detach().reshape(out.shape).to(out.dtype)
    at_out = _try(lambda: _loss_and_grad(loss_fn, out, tgt))
    at_perfect = _try(lambda: _loss_and_grad(loss_fn, perfect, tgt))
    with torch.no_grad():
        half = _scalar(_try(lambda: loss_fn(out + 0.5 * (perfect - out), tgt)))
    if at_out is None or at_perfect is None:
        return empty
    return {"loss_at_outputs": at_out[0], "loss_halfway": half, "grad_at_outputs": at_out[1],
            "grad_at_perfect": at_perfect[1]}


def _probe_loss(ctx: Context) -> LossProbe:
    loss_fn = ctx.spec.loss_fn
    batch = ctx.first_batch("train")
    model = ctx.fresh_model()
    with isolated_rng(ctx.seed):
        try:
            outputs, targets = ctx.forward_fn(model, batch)
        except Exception:
            return LossProbe(measured=False)
    if not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return LossProbe(measured=False)
    if not outputs.is_floating_point() or outputs.numel() == 0 or targets.numel() == 0:
        return LossProbe(measured=False)
    op = producing_op(outputs)
    out = outputs.detach()
    tgt = targets.detach()
    gen = torch.Generator().manual_seed(ctx.seed)
    with isolated_rng(ctx.seed), torch.no_grad():
        matches = () if kind_of(loss_name(loss_fn)) else _matches(loss_fn, out, tgt, gen)
        at_perfect = at_mean = var = None
        if tgt.is_floating_point():
            var = float(tgt.float().var(unbiased=False)) if tgt.numel() > 1 else 0.0
            at_mean = _scalar(_try(lambda: loss_fn(torch.full_like(out, float(tgt.float().mean())), tgt)))
            if tgt.numel() == out.numel():
                at_perfect = _scalar(_try(lambda: loss_fn(tgt.reshape(out.shape).to(out.dtype), tgt)))
    with isolated_rng(ctx.seed):
        mixing = _try(lambda: _target_mixing(loss_fn, out, tgt))
    with isolated_rng(ctx.seed):
        sign = _sign_test(loss_fn, out, tgt)
    return LossProbe(
        measured=True, output_shape=tuple(out.shape), target_shape=tuple(tgt.shape),
        output_dtype=str(out.dtype).replace("torch.", ""), target_dtype=str(tgt.dtype).replace("torch.", ""),
        output_op=op, matches=matches, target_mixing=mixing, loss_at_perfect=at_perfect, loss_at_mean=at_mean,
        target_var=var, **sign,
    )


def measure_loss(ctx: Context) -> LossProbe:
    """The memoised :class:`LossProbe` of this run (one extra forward pass, no backward)."""

    def run() -> LossProbe:
        # The traced step already let torch warn the user (e.g. about broadcasting);
        # the probe's extra loss calls would only repeat it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _probe_loss(ctx)

    return ctx.measure(LOSS_PROBE, run)


@dataclasses.dataclass(frozen=True)
class TrainedOutputs:
    """The model's outputs on the first batch after a few steps of training on it.

    Attributes:
        steps: the steps taken (the spec's optimizer and loss, on a fresh copy).
        minimum, maximum: the outputs' range.
        units: size of the output's dim 1 (classes, output units; 1 for a 1-D output).
        samples: values per unit (the other dims' sizes multiplied).
        dead: the units that are exactly 0 for every one of those values, and whose target,
            where the target has the output's shape, is not 0 everywhere too.
    """

    steps: int
    minimum: float
    maximum: float
    units: int
    samples: int
    dead: tuple[int, ...]


def _by_unit(t: torch.Tensor) -> torch.Tensor:
    """``t`` as (values, units): dim 1 holds the units (classes, channels); a 1-D tensor is one unit."""
    return t.reshape(-1, 1) if t.dim() == 1 else t.movedim(1, -1).reshape(-1, t.shape[1])


def trained_outputs(ctx: Context, steps: int) -> TrainedOutputs | None:
    """The outputs on the first batch after ``steps`` steps of the spec's own optimizer and
    loss on it (a fresh copy; None when a step fails or turns non-finite). Memoised.

    What outputs do once training pushes on them is a property of the model; at
    initialisation a logits head may sit inside [0, 1] by its bias or a small init, and a
    ReLU after the last layer kills output units only as the loss drives them down.
    """

    def run() -> TrainedOutputs | None:
        model = ctx.fresh_model()
        batch = ctx.first_batch("train")
        with isolated_rng(ctx.seed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                optimizer = ctx.make_optimizer(model)
                for _ in range(steps):
                    optimizer.zero_grad(set_to_none=True)
                    outputs, targets = ctx.forward_fn(model, batch)
                    loss = ctx.spec.loss_fn(outputs, targets)
                    if not torch.isfinite(loss.detach()):
                        return None
                    loss.backward()
                    optimizer.step()
                with torch.no_grad():
                    outputs, targets = ctx.forward_fn(model, batch)
            except Exception:  # the forward checks name crashes; here it only means "not measured"
                return None
        if not isinstance(outputs, torch.Tensor) or not outputs.is_floating_point() or outputs.numel() == 0:
            return None
        out = outputs.detach()
        if not torch.isfinite(out).all():
            return None
        by_unit = _by_unit(out)
        zero = (by_unit == 0).all(dim=0)
        if isinstance(targets, torch.Tensor) and targets.shape == out.shape and targets.is_floating_point():
            zero &= ~(_by_unit(targets.detach()) == 0).all(dim=0)  # a unit whose target is 0 everywhere may output 0
        return TrainedOutputs(steps, float(out.min()), float(out.max()), by_unit.shape[1], by_unit.shape[0],
                              tuple(int(i) for i in torch.nonzero(zero).flatten().tolist()))

    return ctx.measure(TRAINED_OUTPUTS, run)


# -- labels ---------------------------------------------------------------------------

#: Largest number of target values read from a data set (beyond it, the batches only).
MAX_DATASET_TARGETS = 10_000_000
#: Largest number of distinct labels kept as counts (class indices; more is not a label set).
MAX_DISTINCT_LABELS = 100_000


@dataclasses.dataclass(frozen=True)
class LabelCounts:
    """Targets seen in one source (the cached batches, or the whole training set).

    Attributes:
        rows: samples (size of the batch dimension, summed).
        values: target values (rows times positions, e.g. pixels or tokens).
        minimum, maximum: the smallest and largest target value.
        integral: every value is a whole number (class indices, or 0./1. floats).
        counts: ``(label, count)`` pairs, sorted, when integral and not too many
            distinct values; else empty.
    """

    rows: int
    values: int
    minimum: float
    maximum: float
    integral: bool
    counts: tuple[tuple[int, int], ...] = ()

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(label for label, _ in self.counts)


@dataclasses.dataclass(frozen=True)
class TargetRows:
    """Float targets read as distributions over dim 1 (the class dimension), over the cached batches.

    Attributes:
        rows: the distributions read (samples times positions).
        width: their length (the classes).
        minimum, maximum: the smallest and largest finite target value.
        min_sum, max_sum: the smallest and largest row sum.
        sum_dev: the largest |row sum - 1| (probabilities).
        exp_sum_dev: the largest |sum of exp(row) - 1| (log-probabilities).
        nonfinite: NaN/Inf target values (the rows are then not judged).
    """

    rows: int
    width: int
    minimum: float
    maximum: float
    min_sum: float
    max_sum: float
    sum_dev: float
    exp_sum_dev: float
    nonfinite: int = 0


@dataclasses.dataclass(frozen=True)
class LabelSummary:
    """What the training targets look like.

    Attributes:
        batches: the targets of the cached training batches; None when they are not
            tensors.
        dataset: the targets of the whole training set when they could be read for
            free and agree with the batches; else None.
        target_dtype: the dtype of the targets the loss gets.
        ignored: the class index the loss ignores (its ``ignore_index``), left out of
            the counts; None for float targets.
        rows: float targets of two or more dimensions read as distributions over dim 1;
            None for other targets.
    """

    batches: LabelCounts | None
    dataset: LabelCounts | None
    target_dtype: str = ""
    ignored: int | None = None
    rows: TargetRows | None = None


def _counts(tensors: list[torch.Tensor], exclude: int | None) -> LabelCounts | None:
    tensors = [t for t in tensors if t.numel() > 0]
    if not tensors:
        return None
    rows = sum(int(t.shape[0]) if t.dim() else 1 for t in tensors)
    flat = torch.cat([t.detach().reshape(-1).to("cpu") for t in tensors])
    if flat.is_complex():
        return None
    if flat.dtype == torch.bool:
        flat = flat.long()
    if flat.is_floating_point():
        flat = flat[torch.isfinite(flat)]
        if flat.numel() == 0:
            return None
    integral = bool((flat == flat.round()).all()) if flat.is_floating_point() else True
    if integral and exclude is not None:
        flat = flat[flat != exclude]
        if flat.numel() == 0:
            return None
    counts: tuple[tuple[int, int], ...] = ()
    if integral:
        labels, freq = torch.unique(flat.long(), return_counts=True)
        if labels.numel() <= MAX_DISTINCT_LABELS:
            counts = tuple(zip(labels.tolist(), freq.tolist()))
    return LabelCounts(rows=rows, values=int(flat.numel()), minimum=float(flat.min()), maximum=float(flat.max()),
                       integral=integral, counts=counts)


def _dataset_targets(ctx: Context) -> torch.Tensor | None:
    """The whole training set's targets when they are free to read, else None.

    Only behind the default forward (which passes the dataset's second item to the
    loss unchanged), for a DataLoader instance (a factory is not called again) over a
    ``TensorDataset`` of (inputs, targets) or a dataset with a ``targets`` attribute
    and no ``target_transform``, possibly wrapped in ``Subset``.
    """
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, Subset, TensorDataset

    loader = ctx.spec.train_loader
    if ctx.spec.forward is not None or not isinstance(loader, DataLoader):
        return None
    # Only a loader that walks the whole dataset trains on all of its labels (a
    # SubsetRandomSampler over a train split, or a weighted sampler, does not).
    if not isinstance(loader.sampler, (RandomSampler, SequentialSampler)) or (
            loader.batch_sampler is not None and type(loader.batch_sampler) is not BatchSampler):
        return None
    dataset: Any = loader.dataset
    index = None
    while isinstance(dataset, Subset):
        sub = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        index = sub if index is None else sub[index]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        if len(dataset.tensors) != 2:
            return None
        targets = dataset.tensors[1]
    elif hasattr(dataset, "targets") and getattr(dataset, "target_transform", None) is None:
        targets = _try(lambda: torch.as_tensor(dataset.targets))
        if not isinstance(targets, torch.Tensor) or targets.dim() == 0 or len(targets) != _try(lambda: len(dataset)):
            return None
    else:
        return None
    if index is not None:
        targets = targets[index]
    if targets.numel() > MAX_DATASET_TARGETS:
        return None
    return targets


def _batch_targets(ctx: Context) -> list[torch.Tensor]:
    from dldoctor.core.context import BatchFormatError, unpack_batch

    found: list[torch.Tensor] = []
    batches = ctx.batches("train")
    if ctx.spec.forward is None:
        for batch in batches:
            try:
                _, targets = unpack_batch(batch)
            except BatchFormatError:
                return []
            if not isinstance(targets, torch.Tensor):
                return []
            found.append(targets)
        return found
    # A custom forward may build the targets itself (e.g. shifted tokens): run it.
    model = ctx.fresh_model()
    with isolated_rng(ctx.seed), torch.no_grad():
        for batch in batches:
            result = _try(lambda: ctx.forward_fn(model, batch))  # noqa: B023 - called at once, in the loop
            if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], torch.Tensor):
                return []
            found.append(result[1])
    return found


def _ignore_index(loss_fn: Any) -> int:
    value = getattr(loss_fn, "ignore_index", -100)
    return int(value) if isinstance(value, int) else -100


def _target_rows(tensors: list[torch.Tensor]) -> TargetRows | None:
    """Float targets of 2+ dimensions with 2+ entries on dim 1, read as distributions over dim 1."""
    if not tensors or any(not t.is_floating_point() or t.dim() < 2 or t.shape[1] < 2 for t in tensors):
        return None
    if len({t.shape[1] for t in tensors}) != 1:
        return None
    with torch.no_grad():
        rows = torch.cat([t.detach().float().movedim(1, -1).reshape(-1, t.shape[1]).cpu() for t in tensors])
        bad = int((~torch.isfinite(rows)).sum())
        finite = rows[torch.isfinite(rows).all(dim=1)]
        if finite.numel() == 0:
            return TargetRows(int(rows.shape[0]), int(rows.shape[1]), math.nan, math.nan, math.nan, math.nan,
                              math.inf, math.inf, bad)
        sums = finite.sum(dim=1)
        exp_sums = finite.double().exp().sum(dim=1)
        return TargetRows(rows=int(rows.shape[0]), width=int(rows.shape[1]), minimum=float(finite.min()),
                          maximum=float(finite.max()), min_sum=float(sums.min()), max_sum=float(sums.max()),
                          sum_dev=float((sums - 1).abs().max()), exp_sum_dev=float((exp_sums - 1).abs().max()),
                          nonfinite=bad)


def _probe_labels(ctx: Context) -> LabelSummary:
    targets = _batch_targets(ctx)
    if not targets:
        return LabelSummary(None, None)
    exclude = _ignore_index(ctx.spec.loss_fn) if not targets[0].is_floating_point() else None
    batches = _counts(targets, exclude)
    dataset = None
    full = _try(lambda: _dataset_targets(ctx))
    if isinstance(full, torch.Tensor) and full.numel() > 0 and batches is not None:
        dataset = _counts([full], exclude)
        # The data set must be where the batches come from: every label seen in a
        # batch is in it (a loader that remaps labels on the fly fails this).
        if dataset is None or not set(batches.labels) <= set(dataset.labels) or not dataset.counts:
            dataset = None
    return LabelSummary(batches, dataset, str(targets[0].dtype).replace("torch.", ""), exclude,
                        _try(lambda: _target_rows(targets)))


def measure_labels(ctx: Context) -> LabelSummary:
    """The memoised :class:`LabelSummary` (no model pass behind the default forward)."""

    def run() -> LabelSummary:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _probe_labels(ctx)

    return ctx.measure(LABEL_SUMMARY, run)
