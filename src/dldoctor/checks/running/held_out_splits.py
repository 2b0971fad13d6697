"""The held-out-splits check: validation and test batches go through the model as training's do."""

from __future__ import annotations

import dataclasses
import types
import warnings
from typing import Any

import torch

from dldoctor.api import CATALOGUE, Check, Severity, Stage
from dldoctor.api.measure import (
    BatchFormatError,
    ForwardTrace,
    LabelCounts,
    batch_size_of,
    isolated_rng,
    loss_kind,
    measure_labels,
    measure_loss,
    trace_step,
    unpack_batch,
)
from dldoctor.api.read import classify, label_list

HELD_OUT = ("val", "test")
INTEGER_DTYPES = {"uint8", "int8", "int16", "int32", "int64"}


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One tensor of a batch: where it sits, its shape and dtype."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    batched: bool

    def shape_text(self, variable: frozenset[int] = frozenset()) -> str:
        dims = ["*" if (i == 0 and self.batched) or i in variable else str(d) for i, d in enumerate(self.shape)]
        return "[" + ", ".join(dims) + "]"


def leaves(batch: Any, default_forward: bool) -> dict[str, Leaf]:
    """The tensors of a batch by path (``inputs``, ``targets[1]``, ``batch['image']``)."""
    size = batch_size_of(batch)
    found: dict[str, Leaf] = {}

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, torch.Tensor):
            shape = tuple(int(s) for s in obj.shape)
            found[path] = Leaf(path, shape, str(obj.dtype).replace("torch.", ""),
                               bool(shape) and size is not None and shape[0] == size)
        elif isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")
        elif isinstance(obj, dict):
            for k, item in obj.items():
                walk(item, f"{path}[{k!r}]")

    if default_forward:
        inputs, targets = unpack_batch(batch)
        walk(inputs, "inputs")
        walk(targets, "targets")
    else:
        walk(batch, "batch")
    return found


def variable_dims(batches: list[dict[str, Leaf]], path: str) -> frozenset[int]:
    """Dimensions (beyond the batch) of ``path`` whose size differs between training batches."""
    shapes = {b[path].shape for b in batches if path in b}
    if len({len(s) for s in shapes}) != 1:
        return frozenset()
    return frozenset(i for i in range(1, len(next(iter(shapes)))) if len({s[i] for s in shapes}) > 1)


@dataclasses.dataclass(frozen=True)
class Difference:
    """A tensor of the split that does not match training's: its shape or its dtype."""

    kind: str  # "rank", "size" or "dtype"
    train: Leaf
    split: Leaf
    variable: frozenset[int]

    def text(self, split: str) -> str:
        if self.kind == "dtype":
            return f"the {split}_loader's {self.split.path} are {self.split.dtype}, training's {self.train.dtype}"
        return (f"the {split}_loader's {self.split.path} are {self.split.shape_text(self.variable)}, training's "
                f"{self.train.shape_text(self.variable)}")


def differences(train: list[dict[str, Leaf]], split: dict[str, Leaf]) -> list[Difference]:
    """Shape and dtype differences of a held-out batch from training's batches (the batch
    dimension, and dimensions that vary between training batches, do not count)."""
    found = []
    for path, mine in split.items():
        ref = train[0].get(path)
        if ref is None:
            continue
        variable = variable_dims(train, path)
        if len(mine.shape) != len(ref.shape):
            found.append(Difference("rank", ref, mine, variable))
        elif any(a != b for i, (a, b) in enumerate(zip(mine.shape, ref.shape))
                 if i not in variable and not (i == 0 and mine.batched and ref.batched)):
            found.append(Difference("size", ref, mine, variable))
        if mine.dtype != ref.dtype:
            found.append(Difference("dtype", ref, mine, variable))
    return found


def _eval_trace(ctx, batch: Any) -> ForwardTrace:
    """Forward and loss of ``batch`` on a fresh copy of the model in eval mode, under no_grad."""
    model = ctx.fresh_model()
    model.eval()
    # trace_step puts the model in train mode; this copy (ours) stays in eval mode.
    model.train = types.MethodType(lambda self, mode=True: self, model)
    with torch.no_grad(), isolated_rng(ctx.seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's broadcast warnings: the loss-broadcast check's business
        trace = trace_step(model, batch, ctx.forward_fn, ctx.spec.loss_fn, ctx.user_roots,
                           tensor_outputs=True if ctx.spec.forward is None else None)
    if trace.crash is not None and trace.crash.phase == "backward":
        # Backward cannot run under no_grad: forward and loss ran, which is all this check asks.
        trace = dataclasses.replace(trace, crash=None)
    return trace


@dataclasses.dataclass(frozen=True)
class BadLabels:
    """Targets of a held-out split that the model's output cannot represent."""

    labels: tuple[float, ...]
    count: int
    seen: int
    batches: int
    allowed: str
    width: int | None
    all_labels: str


def _targets(ctx, batches: list[Any]) -> list[torch.Tensor]:
    """The target tensor of each batch (a custom ``forward`` may build them: it is run)."""
    out: list[torch.Tensor] = []
    if ctx.spec.forward is None:
        for batch in batches:
            try:
                _, targets = unpack_batch(batch)
            except BatchFormatError:
                return out
            if isinstance(targets, torch.Tensor):
                out.append(targets)
        return out
    model = ctx.fresh_model()
    model.eval()
    with torch.no_grad(), isolated_rng(ctx.seed):
        for batch in batches:
            try:
                result = ctx.forward_fn(model, batch)
            except Exception:
                return out
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], torch.Tensor):
                out.append(result[1])
    return out


def bad_labels(ctx, batches: list[Any], train_trace: ForwardTrace) -> BadLabels | None:
    """Targets of ``batches`` outside what the training step's output allows (class indices
    beyond its width for a cross-entropy / NLL loss; values outside [0, 1] for a binary one)."""
    if len(train_trace.outputs) != 1 or len(train_trace.targets) != 1:
        return None
    kind, _ = loss_kind(train_trace.loss_name)
    if not kind:
        kind, _ = loss_kind(train_trace.loss_name, measure_loss(ctx).matches)
    targets = _targets(ctx, batches)
    if not targets:
        return None
    flat = torch.cat([t.detach().reshape(-1).cpu() for t in targets])
    if flat.numel() == 0 or flat.is_complex():
        return None
    shape = train_trace.outputs[0].shape
    if kind in ("logits", "log-probs") and len(shape) >= 2 and train_trace.targets[0].dtype in INTEGER_DTYPES:
        if flat.is_floating_point() or flat.dtype == torch.bool:
            return None  # a dtype difference, reported as such
        ignore = getattr(ctx.spec.loss_fn, "ignore_index", -100)
        width = int(shape[1])
        bad = (flat >= width) | ((flat < 0) & (flat != (ignore if isinstance(ignore, int) else -100)))
        allowed = f"[0, {width})"
    elif kind in ("binary-logits", "probs"):
        flat = flat.double()
        bad = (flat < 0) | (flat > 1)
        width, allowed = None, "[0, 1]"
    else:
        return None
    if not bool(bad.any()):
        return None
    values = torch.unique(flat[bad])
    shown = tuple(float(v) for v in values[:20].tolist())
    everything = torch.unique(flat)
    listing = label_list(LabelCounts(0, 0, float(everything.min()), float(everything.max()), True,
                                      tuple((int(v), 0) for v in everything.tolist()))) \
        if everything.numel() <= 200 and not flat.is_floating_point() else \
        f"{float(everything.min()):g}..{float(everything.max()):g}"
    return BadLabels(shown, int(bad.sum()), int(flat.numel()), len(targets), allowed, width, listing)


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class HeldOutSplitsCheck(Check):
    """Validation and test batches fit the model as training's do: layout, shapes, dtypes, forward pass, labels.

    Takes the first batches of each held-out split (through the same guarded reader
    as training's), and on a fresh copy of the model in eval mode: the batch unpacks
    as training's, its tensors have training's shapes (beyond the batch dimension,
    and dimensions that vary between training batches) and dtypes, the forward pass
    and the loss run (a crash is classified as the forward-pass check classifies
    training's), and the targets lie in the range the model's output allows. A split
    that fails is left out of the checks that would read it, with the reason.
    """

    name = "held-out-splits"
    stage = Stage.RUN
    order = 1
    requires = ("forward_pass",)
    emits = ("shape-mismatch", "dtype-mismatch", "device-mismatch", "label-out-of-range", "out-of-memory",
             "loss-input-probabilities", "entrypoint-error")

    def run(self, ctx):
        findings = []
        for split in HELD_OUT:
            if not ctx.has_split(split):
                continue
            found = self._split(ctx, split)
            if found:
                ctx.set_unusable(split, f"held-out-splits found that the {split}_loader's batches do not fit the "
                                        f"model ({found[0].title})")
            findings += found
        return findings

    def _split(self, ctx, split: str):
        name = f"{split}_loader"
        batches = ctx.batches(split)
        default_forward = ctx.spec.forward is None
        try:
            mine = leaves(batches[0], default_forward)
        except BatchFormatError as exc:
            return [self.finding(
                "entrypoint-error", Severity.ERROR, 1.0, title=f"{name}: {exc}, unlike the train_loader's",
                evidence=[f"the {name}'s first batch cannot be unpacked into (inputs, targets) as training's: {exc}"],
                fixes=[f"Make the {name}'s Dataset return (inputs, targets) as the train_loader's does (the same "
                       f"Dataset class, built on the held-out rows)."],
                metrics={"split": split, "fatal": False}, location=name)]
        train = [leaves(b, default_forward) for b in ctx.batches("train")]
        diffs = differences(train, mine)
        trace = _eval_trace(ctx, batches[0])
        labels = bad_labels(ctx, batches, ctx.forward_trace())
        findings = []
        if trace.crash is not None:
            verdict = classify(trace, {k: e.fixes for k, e in CATALOGUE.items()},
                               int(ctx.config.get("forward_pass.trace_modules_shown")))
            if not (verdict.diagnosis_id == "label-out-of-range" and labels is not None):
                findings.append(self._crash(split, verdict, diffs, trace))
        elif diffs:
            findings.append(self._mismatch(split, diffs))
        if labels is not None:
            findings.append(self._labels(ctx, split, labels, trace))
        return findings

    def _crash(self, split: str, verdict, diffs: list[Difference], trace: ForwardTrace):
        name = f"{split}_loader"
        evidence = [d.text(split) for d in diffs]
        evidence.append(f"the model raises on the {name}'s first batch (eval mode), while the train_loader's runs")
        evidence += list(verdict.evidence)
        if trace.crash is not None and trace.crash.user_traceback.startswith("Traceback"):
            evidence.append(trace.crash.user_traceback)
        if diffs:
            # The model fits training's batches: the split's data is what to change, not a layer.
            fixes = [self._data_fix(split, diffs),
                     f"Build the {name} with the same Dataset class and preprocessing code as the train_loader, on "
                     f"the held-out rows, and compare one batch of each (x.shape, x.dtype) before training."]
        else:
            fixes = list(verdict.fixes)
        metrics = {**verdict.metrics, "split": split}
        if diffs:
            metrics.update(train_shape=diffs[0].train.shape_text(diffs[0].variable),
                           split_shape=diffs[0].split.shape_text(diffs[0].variable))
        diagnosis = verdict.diagnosis_id if verdict.diagnosis_id in self.emits else "shape-mismatch"
        return self.finding(diagnosis, Severity.ERROR, verdict.confidence, title=f"{name}: {verdict.title}",
                            evidence=evidence, fixes=fixes, metrics=metrics, location=name)

    def _mismatch(self, split: str, diffs: list[Difference]):
        name = f"{split}_loader"
        first = next((d for d in diffs if d.kind != "dtype"), diffs[0])
        dtype = first.kind == "dtype"
        # The model accepts inputs of another size (adaptive pooling, a sequence model):
        # suspicious (a resize or a crop missing in this split's transform), not a crash.
        severity = Severity.WARNING if all(d.kind == "size" for d in diffs) else Severity.ERROR
        title = (f"{name}: {first.split.path} are {first.split.dtype} where training's are {first.train.dtype}" if dtype
                 else f"{name}: {first.split.path} are {first.split.shape_text(first.variable)} where training's are "
                      f"{first.train.shape_text(first.variable)}")
        evidence = [d.text(split) for d in diffs]
        evidence.append("the model runs on both, but it is evaluated on inputs prepared unlike those it trains on")
        metrics = {"split": split, "train_shape": first.train.shape_text(first.variable),
                   "split_shape": first.split.shape_text(first.variable), "train_dtype": first.train.dtype,
                   "split_dtype": first.split.dtype}
        return self.finding("dtype-mismatch" if dtype else "shape-mismatch", severity, 0.8, title=title,
                            evidence=evidence, fixes=[self._data_fix(split, diffs)], metrics=metrics, location=name)

    @staticmethod
    def _data_fix(split: str, diffs: list[Difference]) -> str:
        first = diffs[0]
        if first.kind == "dtype":
            return (f"Prepare the {split}_loader's {first.split.path} as training's: the same transform and dtype "
                    f"({first.train.dtype}), e.g. the same Dataset class built on the held-out rows.")
        return (f"Prepare the {split}_loader's {first.split.path} as training's, so they arrive as "
                f"{first.train.shape_text(first.variable)}: the same transform, feature columns and encoders, fitted "
                f"on the training data and applied to every split (not fitted again on each split).")

    def _labels(self, ctx, split: str, bad: BadLabels, trace: ForwardTrace):
        name = f"{split}_loader"
        values = "{" + ", ".join(_number(v) for v in bad.labels) + (", ..." if len(bad.labels) >= 20 else "") + "}"
        train = measure_labels(ctx)
        seen = train.dataset or train.batches
        train_text = (f"training's labels are {label_list(seen)}" if seen is not None else "")
        if bad.width is not None:
            title = (f"{name}: labels {values} occur but the model outputs only {bad.width} classes "
                     f"(0..{bad.width - 1})")
        else:
            title = f"{name}: targets {values} lie outside [0, 1], which the binary loss needs"
        evidence = [f"{bad.count} of {bad.seen} targets in the first {bad.batches} batch"
                    f"{'es' if bad.batches != 1 else ''} of the {name} lie outside {bad.allowed}: "
                    f"labels are {bad.all_labels}"]
        if train_text:
            evidence.append(train_text)
        evidence.append("evaluating on this split crashes (an index error on the CPU, a device-side assert on a "
                        "GPU) or scores classes the model cannot predict")
        if trace.crash is not None:
            evidence.append(f"torch said: {trace.crash.exc_type}: {trace.crash.first_line}")
        fixes = [f"Encode the {name}'s labels with training's mapping (the same class list or encoder, fitted once on "
                 f"the training labels), so that they lie in {bad.allowed}.",
                 f"If the {name} really holds classes training has not, leave them out of it, or make the last "
                 f"layer wide enough and train on them too."]
        metrics = {"split": split, "out_of_range": bad.count, "targets_seen": bad.seen,
                   "labels": [_number(v) for v in bad.labels]}
        if bad.width is not None:
            metrics["classes"] = bad.width
        return self.finding("label-out-of-range", Severity.ERROR, 0.95, title=title, evidence=evidence, fixes=fixes,
                            metrics=metrics, location=name)
