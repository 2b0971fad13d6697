"""The batch-mixing check: is every sample's output computed from that sample alone?"""

from __future__ import annotations

import dataclasses

from dldoctor.api import Check, CheckIncomplete, Severity, Stage, keys, lookup, user_line
from dldoctor.api.measure import (
    BatchDependence,
    CallChange,
    RowGradient,
    forward_of,
    loader_batch_size,
    measure_batch_dependence,
)

#: Module types that read a sequence axis, where batch_first decides which axis is the batch.
_SEQUENCE_TYPES = ("LSTM", "GRU", "RNN", "MultiheadAttention", "Transformer", "TransformerEncoder",
                   "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer")


def sample_ranges(samples: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    parts: list[list[int]] = []
    for s in sorted(samples):
        if parts and parts[-1][1] == s - 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


@dataclasses.dataclass(frozen=True)
class CrossSampleRow:
    """One probed output row that depends on other samples."""

    row: RowGradient
    others: tuple[int, ...]
    worst: float


def leaks(rows: tuple[RowGradient, ...], tolerance: float) -> list[CrossSampleRow]:
    """The probed rows whose gradient reaches other samples above ``tolerance`` (relative)."""
    found = []
    for g in rows:
        rel = g.relative()
        others = tuple(j for j, v in enumerate(rel) if j != g.owner and v > tolerance)
        if others:
            found.append(CrossSampleRow(g, others, max(rel[j] for j in others)))
    return found


def looks_causal(found: list[CrossSampleRow]) -> bool:
    """Every leak runs from earlier samples to a later one: the signature of a time axis."""
    return all(j < leak.row.owner for leak in found for j in leak.others)


def describe_leak(leak: CrossSampleRow) -> str:
    """``output of sample 0 depends on the inputs of samples 1-7; relative gradient up to 0.31``."""
    row = f" (output row {leak.row.row})" if leak.row.row != leak.row.owner else ""
    plural = "s" if len(leak.others) > 1 else ""
    text = f"output of sample {leak.row.owner}{row} depends on the inputs of sample{plural} " \
           f"{sample_ranges(list(leak.others))}"
    if leak.row.own == 0:
        return text + " and not on its own inputs at all"
    return text + f"; relative gradient up to {leak.worst:.3g} (independent samples give exactly 0)"


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the mixing starts, as far as the localisation can tell."""

    location: str
    inside: CallChange | None  # the call whose own computation mixes samples
    parent: str  # the forward whose code between two calls mixes them
    last_clean: CallChange | None
    first_mixed: CallChange | None
    between: tuple[CallChange, ...]  # calls in between whose outputs are not batch-first


def locate(calls: tuple[CallChange, ...], tolerance: float) -> Origin | None:
    """Find the first call whose output row for the probed sample moved with the others."""
    idx = next((i for i, c in enumerate(calls) if c.output_change is not None and c.output_change > tolerance), None)
    if idx is None:
        return None
    first = calls[idx]
    clean = [i for i in range(idx) if (change := calls[i].output_change) is not None and change <= tolerance]
    last_clean = calls[clean[-1]] if clean else None
    between = tuple(c for c in calls[(clean[-1] + 1 if clean else 0):idx] if c.output_change is None)
    if first.input_change is not None and first.input_change <= tolerance:
        location = first.label if first.registered else first.parent_label
        return Origin(location, first, "", last_clean, first, between)
    return Origin(first.parent_label, None, first.parent_label, last_clean, first, between)


def _call_text(c: CallChange) -> str:
    inner = f", {c.settings}" if c.settings else ""
    return f"{c.label} ({c.type_name}{inner})"


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _mixes_over_batch(c: CallChange) -> bool:
    return c.type_name in ("Softmax", "LogSoftmax", "Softmin") or "dim=0" in c.settings.split(", ")


def _sequence_first(c: CallChange) -> bool:
    return c.type_name in _SEQUENCE_TYPES and "batch_first=False" in c.settings


def describe_origin(origin: Origin, k: int) -> tuple[list[str], list[str]]:
    """Evidence and case-specific fixes for where the mixing starts."""
    evidence: list[str] = []
    fixes: list[str] = []
    inside = origin.inside
    if inside is not None:
        what = _call_text(inside) if inside.registered else \
            f"a {inside.type_name}{' (' + inside.settings + ')' if inside.settings else ''} built inside " \
            f"{forward_of(inside.parent_label)} (not a registered submodule)"
        evidence.append(f"the dependence first appears in the output of {what}, whose input "
                        f"{_shape(inside.input_shape)} still kept the samples apart")
        name = inside.label if inside.registered else \
            f"the {inside.type_name} built in {forward_of(inside.parent_label)}"
        if _mixes_over_batch(inside):
            fixes.append(f"{name} works over dim 0, the batch: use dim=1 (or -1).")
        elif _sequence_first(inside):
            fixes.append(f"Pass batch_first=True to {name} ({inside.type_name}): it gets "
                         f"{_shape(inside.input_shape)} with the {k} samples first, but with batch_first=False "
                         f"it reads dim 0 as the sequence.")
        elif inside.registered:
            clean = origin.last_clean
            after = f", after {clean.label}" if clean is not None else ""
            if clean is not None:
                evidence.append(f"{clean.label} is the last call whose output still kept the samples "
                                f"apart: the mixing is in {forward_of(name)} after it")
            fixes.append(f"In {forward_of(name)} ({inside.type_name}){after}: look for an operation over dim 0 "
                         f"(softmax/log_softmax, mean/std/sum, normalize, a view/reshape/transpose) and make it "
                         f"work per sample (dim=1 or -1; x.reshape(x.size(0), -1)).")
        else:
            fixes.append(f"{name[0].upper() + name[1:]} combines the samples: make it work per sample, and create "
                         f"it once in __init__ so that model.eval() reaches it.")
        return evidence, fixes
    where = f"in {forward_of(origin.parent)}"
    first = origin.first_mixed
    span = (f"between {_call_text(origin.last_clean)}, whose output is still per sample, and "
            if origin.last_clean is not None else "before ")
    if first is not None:
        evidence.append(f"the samples are mixed {where}, {span}{_call_text(first)}, whose input "
                        f"{_shape(first.input_shape)} already mixes them")
    between = [c for c in origin.between if c.parent_label == origin.parent]
    for c in between:
        evidence.append(f"in between ran {_call_text(c)}: {_shape(c.input_shape)} -> {_shape(c.output_shape)}, "
                        f"an output not laid out with the {k} samples first")
    seq = [c for c in between if _sequence_first(c)]
    if seq:
        c = seq[0]
        fixes.append(f"{c.label} ({c.type_name}) works sequence-first (batch_first=False): it got "
                     f"{_shape(c.input_shape)} and returned {_shape(c.output_shape)}. Move axes with "
                     f"x.transpose(0, 1) / x.permute(...) on the way in and out (x.view/x.reshape regroup the "
                     f"numbers instead), or pass batch_first=True and drop the axis juggling.")
    after = f" after {origin.last_clean.label}" if origin.last_clean is not None else ""
    fixes.append(f"Check each view/reshape/transpose and dim= argument {where}{after}: reorder axes with "
                 f"permute/transpose, flatten with x.reshape(x.size(0), -1) or torch.flatten(x, 1), and take "
                 f"softmax/mean/std/normalisation over the feature dimension, never dim 0.")
    return evidence, fixes


class BatchMixingCheck(Check):
    """Each sample's output depends only on that sample (no mixing across the batch).

    On a copy of the model in eval mode, a slice of the first batch runs forward with
    the per-sample inputs (or the first embedding's output) as gradient leaves; for a
    few output rows, the gradient of a random projection of the row with respect to
    every sample must be zero except on the row's own sample. When it is not, the
    other samples are perturbed and every module call is compared on the probed row,
    to find where the mixing starts.
    """

    name = "batch-mixing"
    stage = Stage.RUN
    order = 30
    emits = ("batch-mixing",)
    requires = ("forward_pass",)

    def run(self, ctx):
        cfg = lambda key: ctx.config.get(f"batch_mixing.{key}")  # noqa: E731
        tol = float(cfg("min_relative_gradient"))
        dep: BatchDependence = ctx.measure(keys.BATCH_DEPENDENCE, lambda: measure_batch_dependence(
            ctx.fresh_model(), ctx.first_batch("train"), ctx.forward_fn, ctx.seed, int(cfg("samples")),
            int(cfg("rows")), tol, loader_batch_size(ctx.spec.train_loader)))
        if dep.status == "crashed":  # the model could not take the slice: nothing was checked
            raise CheckIncomplete(f"the model raised on a slice of {dep.samples} samples of the first batch "
                                  f"in eval mode: {dep.reason}", location=user_line(dep.reason))
        if dep.status != "measured":
            return []
        found = leaks(dep.rows, tol)
        if not found:
            return []
        k = dep.samples
        worst = max(leak.worst for leak in found)
        evidence = [describe_leak(leak) for leak in found]
        clean = [g for g in dep.rows if g not in [leak.row for leak in found]]
        if clean:
            evidence.append(f"output of sample{'s' if len(clean) > 1 else ''} "
                            f"{sample_ranges([g.owner for g in clean])} depends on its own inputs only")
        evidence.append(f"measured on {k} samples of the first batch with the model in eval mode; gradients "
                        f"taken with respect to the {dep.entry}; model output {_shape(dep.output_shape)}")
        metrics = {"max_relative_gradient": worst, "samples": k, "rows_probed": len(dep.rows),
                   "rows_mixed": len(found)}
        origin = locate(dep.calls, float(cfg("localisation_tolerance")))
        location, fixes = "model", []
        if origin is not None:
            more, fixes = describe_origin(origin, k)
            evidence += more
            location = origin.location
            metrics["first_mixed_call"] = origin.first_mixed.label if origin.first_mixed else ""
        elif dep.output_change is not None and dep.output_change > float(cfg("localisation_tolerance")):
            location = "spec forward"
            evidence.append("no module's output mixes the samples, but the output the spec's forward returns does")
            fixes.append("Check the spec's forward function for an operation over dim 0 of the model output.")
        fixes += [f for f in lookup("batch-mixing").fixes if f not in fixes]

        c = origin.first_mixed if origin is not None else None
        if c is not None and c.training and c.mode_dependent:
            # Batch norm left in training mode mixes samples by design: the mode is the root cause.
            return [self.finding(
                "batch-mixing", Severity.INFO, 0.5,
                title=f"Samples mix in {c.label}, which runs in training mode during evaluation",
                evidence=evidence + [f"{_call_text(c)} was called with training=True while the model was in "
                                     f"eval mode: a train/eval mode problem (see the eval-mode check)"],
                fixes=[f"Remove the .train() call that reaches {c.label} from forward." if c.registered else
                       f"Create the {c.type_name} once in __init__ so that model.eval() reaches it."],
                metrics=metrics, location=location,
            )]
        if not dep.layout_known and looks_causal(found):
            return [self.finding(
                "batch-mixing", Severity.INFO, 0.3,
                title="Outputs depend on earlier rows of the batch: dim 0 may be a time axis, not the batch",
                evidence=evidence + ["every dependence runs from earlier rows to later ones, as along a sequence; "
                                     "the loader's batch size is unknown, so dim 0 may not be the batch"],
                fixes=["If the batches are laid out [batch, ...], this is batch mixing: check batch_first on the "
                       "recurrent/attention layers and every view/reshape.",
                       "If they are [time, batch, ...], nothing is wrong."],
                metrics=metrics, location=location,
            )]
        strong = worst >= float(cfg("strong_relative_gradient"))
        title = "One sample's output depends on the other samples in the batch"
        if origin is not None and origin.location != "model":
            title += f" (from {origin.location})"
        return [self.finding(
            "batch-mixing", Severity.ERROR, 0.95 if strong else 0.8, title=title, evidence=evidence,
            fixes=fixes, metrics=metrics, location=location,
        )]

