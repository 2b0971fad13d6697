"""Classify a crashed training step into a diagnosis, and localise it.

Structure first, message second: the failing module's settings (``in_features``,
``in_channels``, ...) and the tensors it got are compared directly, which works
whatever the wording of torch's error; the exception message decides only where
the structure says nothing (functional code in ``forward``, the loss, backward).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from dldoctor.probes.forward_trace import CrashInfo, ForwardTrace, ModuleSnapshot, display_path
from dldoctor.probes.tensors import TensorInfo

# Ordered: the first pattern that matches wins (device and dtype messages often
# also mention shapes or "expected", so they go first).
MESSAGE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("out-of-memory", re.compile(r"out of memory|can't allocate memory|cannot allocate memory", re.I)),
    ("device-mismatch", re.compile(
        r"type \(torch\.cuda\.\w+\) and \w+ type \(torch\.\w+Tensor\)|"
        r"type \(torch\.\w+Tensor\) and \w+ type \(torch\.cuda|same device|not compiled with cuda|no nvidia driver|cuda driver|cuda is not available|"
        r"found no nvidia|expected .*device|on device .* but|is on .* but expected|mps backend|"
        r"attempting to deserialize object on a cuda device", re.I)),
    ("label-out-of-range", re.compile(
        r"target -?\d+ is out of bounds|t >= 0 && t < n_classes|cur_target >= 0|"
        r"target .* out of (bounds|range)", re.I)),
    ("loss-input-probabilities", re.compile(r"all elements of input should be between 0 and 1", re.I)),
    ("no-gradient-flow", re.compile(r"does not require grad and does not have a grad_fn", re.I)),
    ("dtype-mismatch", re.compile(
        r"expected scalar type|same dtype|dtype|input type .* and (weight|bias) type|not implemented for '|"
        r"only tensors of floating point|can't be cast to the desired output type|tensors used as indices must be "
        r"long|expected .*(long|float|double|int)\b.*(but )?(got|found)|expected floating point type", re.I)),
    ("shape-mismatch", re.compile(
        r"shape|size mismatch|must match the size|sizes of tensors must match|expected .*input|expected input|"
        r"channels|dimension|batch_size|mat1 and mat2|index out of range in self|input.size\(-1\)|"
        r"was expected to be|too many indices|not enough values|invalid for input of size|size of tensor|"
        r"non-singleton|numel|unbatched|backward needs a scalar|didn't match|does not match", re.I)),
)

CONV_DIMS = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3, "ConvTranspose1d": 1, "ConvTranspose2d": 2,
             "ConvTranspose3d": 3, "LazyConv1d": 1, "LazyConv2d": 2, "LazyConv3d": 3}
NORM_DIMS = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "BatchNorm3d": (5,),
             "InstanceNorm1d": (2, 3), "InstanceNorm2d": (3, 4), "InstanceNorm3d": (4, 5)}
RNN_TYPES = {"RNN", "LSTM", "GRU"}


@dataclasses.dataclass(frozen=True)
class CrashVerdict:
    """What the crash was, where, and what to change."""

    id: str
    title: str
    evidence: tuple[str, ...]
    fixes: tuple[str, ...]
    metrics: dict[str, Any]
    location: str
    confidence: float


def classify_message(exc_type: str, message: str) -> str | None:
    """The diagnosis ID that torch's error text points to, or None."""
    if exc_type in ("OutOfMemoryError", "MemoryError"):
        return "out-of-memory"
    text = f"{exc_type}: {message}"
    for diagnosis_id, pattern in MESSAGE_RULES:
        if pattern.search(text):
            return diagnosis_id
    return None


def _dims(shape: tuple[int, ...]) -> str:
    return "*".join(str(s) for s in shape)


def _shape(info: TensorInfo) -> str:
    return info.shape_str


# -- structural rules for a failing module ------------------------------------------
def _module_rule(m: ModuleSnapshot) -> tuple[str, str, list[str]] | None:
    """(id, title, fixes) read off the failing module's settings and inputs, or None."""
    if not m.inputs:
        return None
    x = m.inputs[0]
    where = m.display_path
    param_devices = {info.device for _, info in m.params}
    input_devices = {t.device for t in m.inputs}
    if len(param_devices | input_devices) > 1:
        return ("device-mismatch",
                f"{where} ({m.type_name}) has parameters on {', '.join(sorted(param_devices))} "
                f"but gets inputs on {', '.join(sorted(input_devices))}",
                [f"Move inputs to the model's device: inputs.to(next(model.parameters()).device).",
                 "Create new tensors inside forward on the input's device: torch.zeros(..., device=x.device)."])
    float_params = [info for _, info in m.params if info.is_floating]
    if m.type_name == "Embedding":
        if x.is_floating:
            return ("dtype-mismatch", f"{where} (Embedding) gets {x.dtype} inputs; it needs integer token ids",
                    ["Pass token ids as integers: inputs.long()."])
        n = m.settings.get("num_embeddings")
        if m.integer_input_range and n is not None and (m.integer_input_range[1] >= n or m.integer_input_range[0] < 0):
            lo, hi = m.integer_input_range
            return ("shape-mismatch",
                    f"{where} (Embedding, num_embeddings={n}) gets token ids in [{lo}, {hi}]",
                    [f"Set num_embeddings to at least {hi + 1} (the vocabulary size, plus any special tokens).",
                     "Check that the tokenizer and the model use the same vocabulary."])
        return None
    if float_params and x.dtype != float_params[0].dtype:
        p = float_params[0].dtype
        if x.is_integer:
            fix = (f"Convert inputs to {p} once, in the dataset: x.float() / 255 for 0-255 images, then normalise."
                   if x.dtype == "uint8" else f"Convert inputs to floating point: inputs.to(torch.{p}).")
        else:
            fix = (f"Convert inputs to {p}: torch.from_numpy(a).float(), or a.astype(np.float32) before "
                   "building the tensors." if x.dtype == "float64" else f"Convert inputs to {p}: inputs.to(torch.{p}).")
        return ("dtype-mismatch", f"{where} ({m.type_name}) has {p} weights but gets {x.dtype} inputs {_shape(x)}",
                [fix, "Alternatively convert the model: model.to(dtype) (rarely what you want)."])
    s = m.settings
    if m.type_name in ("Linear", "LazyLinear", "Bilinear") and "in_features" in s and x.shape:
        want = s["in_features"]
        if x.shape[-1] != want:
            flat = math.prod(x.shape[1:]) if len(x.shape) > 1 else x.shape[0]
            if len(x.shape) > 2 and flat == want:
                fix = (f"Flatten before {where}: the input is {_shape(x)}, in_features expects "
                       f"{want} = {_dims(x.shape[1:])}: x = torch.flatten(x, 1) (or nn.Flatten()).")
                title = f"{where} (Linear, in_features={want}) gets an unflattened {_shape(x)} input"
            elif len(x.shape) > 2:
                fix = (f"Flatten before {where} (torch.flatten(x, 1)) and set in_features={flat}: the input "
                       f"{_shape(x)} has {_dims(x.shape[1:])} = {flat} features, not {want}.")
                title = f"{where} (Linear, in_features={want}) gets {_shape(x)}: {flat} features once flattened"
            else:
                fix = (f"Set in_features={x.shape[-1]} in {where}: its input is {_shape(x)}, "
                       f"or fix the layer before it to produce {want} features.")
                title = f"{where} (Linear) expects {want} input features but gets {x.shape[-1]}"
            return ("shape-mismatch", title, [fix])
        return None
    if m.type_name in CONV_DIMS and "in_channels" in s:
        k = CONV_DIMS[m.type_name]
        if len(x.shape) not in (k + 1, k + 2):
            layout = "[N, C" + ", L" * (k == 1) + ", H, W" * (k == 2) + ", D, H, W" * (k == 3) + "]"
            return ("shape-mismatch", f"{where} ({m.type_name}) expects {k + 2}-D input {layout} but gets {_shape(x)}",
                    [f"Reshape inputs to {layout} before {where}, e.g. x.view(N, {s['in_channels']}, ...) for "
                     "flattened images, or x.unsqueeze(1) to add a channel axis."])
        channels = x.shape[1] if len(x.shape) == k + 2 else x.shape[0]
        if channels != s["in_channels"]:
            return ("shape-mismatch",
                    f"{where} ({m.type_name}, in_channels={s['in_channels']}) gets {channels} channels: {_shape(x)}",
                    [f"Set in_channels={channels} in {where}, or give the data {s['in_channels']} channels "
                     "(e.g. x.repeat(1, 3, 1, 1) for grayscale into an RGB network).",
                     "Check the channel axis: PyTorch expects channels first, [N, C, H, W]."])
        return None
    if m.type_name in NORM_DIMS and "num_features" in s and x.shape:
        if len(x.shape) >= 2 and x.shape[1] != s["num_features"]:
            return ("shape-mismatch",
                    f"{where} ({m.type_name}, num_features={s['num_features']}) gets {x.shape[1]} channels: {_shape(x)}",
                    [f"Set num_features={x.shape[1]} in {where} (it must equal the channels of the layer before)."])
        if len(x.shape) not in NORM_DIMS[m.type_name]:
            return ("shape-mismatch", f"{where} ({m.type_name}) cannot take a {len(x.shape)}-D input {_shape(x)}",
                    [f"Use the norm layer that matches the input's rank, or reshape the input before {where}."])
        return None
    if m.type_name == "LayerNorm" and "normalized_shape" in s:
        want = tuple(s["normalized_shape"])
        if tuple(x.shape[-len(want):]) != want:
            return ("shape-mismatch",
                    f"{where} (LayerNorm, normalized_shape={list(want)}) gets {_shape(x)}",
                    [f"Set normalized_shape to the last dimension(s) of its input: {list(x.shape[-len(want):])}."])
        return None
    if m.type_name == "MultiheadAttention" and "embed_dim" in s and x.shape and x.shape[-1] != s["embed_dim"]:
        return ("shape-mismatch",
                f"{where} (MultiheadAttention, embed_dim={s['embed_dim']}) gets {x.shape[-1]} features per token: "
                f"{_shape(x)}",
                [f"Make the embedding width equal d_model/embed_dim: project the inputs to {s['embed_dim']} "
                 f"features (nn.Linear({x.shape[-1]}, {s['embed_dim']})) or set d_model={x.shape[-1]}."])
    if m.type_name in RNN_TYPES and "input_size" in s:
        if len(x.shape) not in (2, 3):
            return ("shape-mismatch", f"{where} ({m.type_name}) expects [batch, seq, features] or [seq, batch, "
                    f"features] input but gets {_shape(x)}",
                    ["Reshape the input to 3-D: [batch, seq_len, features] with batch_first=True."])
        if x.shape[-1] != s["input_size"]:
            return ("shape-mismatch",
                    f"{where} ({m.type_name}, input_size={s['input_size']}) gets {x.shape[-1]} features per step",
                    [f"Set input_size={x.shape[-1]} in {where}, or project the inputs to {s['input_size']} features."])
        return None
    return None


# -- the loss ---------------------------------------------------------------------
def _loss_rule(trace: ForwardTrace, crash: CrashInfo, message_id: str | None) -> tuple[str, str, list[str]] | None:
    if not trace.outputs or not trace.targets:
        return None
    out, tgt = trace.outputs[0], trace.targets[0]
    if out.device != tgt.device:
        return ("device-mismatch", f"outputs are on {out.device} but targets on {tgt.device}",
                ["Move targets to the outputs' device in forward: targets.to(outputs.device)."])
    if out.shape and tgt.shape and out.shape[0] != tgt.shape[0] and len(out.shape) >= 1:
        return ("shape-mismatch",
                f"the loss gets {out.shape[0]} outputs but {tgt.shape[0]} targets ({_shape(out)} vs {_shape(tgt)})",
                ["Check the last layers' reshaping: outputs must keep the batch dimension first "
                 "(x.view(x.size(0), -1), not x.view(-1, k)).",
                 "Check that the forward returns the targets of the same batch."])
    label_rule = _label_range_rule(trace, message_id)
    if label_rule is not None:
        return label_rule
    if message_id == "dtype-mismatch" or (tgt.is_floating and len(tgt.shape) == len(out.shape) - 1
                                          and len(out.shape) >= 2):
        return _loss_dtype_rule(out, tgt, message_id)
    return None


def _label_range_rule(trace: ForwardTrace, message_id: str | None) -> tuple[str, str, list[str]] | None:
    """Integer targets outside [0, n_outputs): read from the targets, whatever the error said.

    On CUDA the loss's range check is a device-side assert that surfaces later (often
    in backward) with a generic message, so the targets are the reliable evidence.
    """
    if not trace.outputs or not trace.targets or message_id in ("device-mismatch", "out-of-memory"):
        return None
    out, tgt = trace.outputs[0], trace.targets[0]
    if trace.target_range is not None and tgt.is_integer and len(out.shape) >= 2 and len(tgt.shape) < len(out.shape):
        lo, hi = trace.target_range
        n = out.shape[1]
        if lo < 0 or hi >= n:
            fixes = []
            if lo >= 1 and hi == n:
                fixes.append(f"Labels run from {int(lo)} to {int(hi)}: shift them to start at 0 (targets - 1).")
            elif hi >= n:
                fixes.append(f"Make the output layer {int(hi) + 1} wide (labels go up to {int(hi)}), "
                             f"or map the labels into [0, {n}).")
            if lo < 0:
                fixes.append(f"Labels include {int(lo)}: if that marks 'unknown', pass ignore_index={int(lo)} to "
                             "the loss, or drop those samples.")
            return ("label-out-of-range",
                    f"targets span [{int(lo)}, {int(hi)}] but the model has {n} outputs (valid: 0..{n - 1})", fixes)
    return None


def _loss_dtype_rule(out: TensorInfo, tgt: TensorInfo, message_id: str | None) -> tuple[str, str, list[str]] | None:
    if tgt.is_floating and len(tgt.shape) == len(out.shape) - 1:
        return ("dtype-mismatch",
                f"targets are class indices stored as {tgt.dtype} {_shape(tgt)}; the loss needs int64",
                ["Store class labels as integers: torch.tensor(y, dtype=torch.long), or targets.long()."])
    if tgt.is_integer and out.is_floating:
        return ("dtype-mismatch", f"targets are {tgt.dtype} but the loss needs {out.dtype} like the outputs",
                ["Convert the targets to floating point (this loss compares them with float outputs): "
                 "targets.float(), once, in the dataset."])
    if message_id == "dtype-mismatch":
        return ("dtype-mismatch", f"the loss cannot take outputs {out} with targets {tgt}",
                ["Make outputs and targets the dtypes the loss expects (see its documentation)."])
    return None


def _backward_rule(trace: ForwardTrace, message_id: str | None) -> tuple[str, str, list[str]] | None:
    label_rule = _label_range_rule(trace, message_id)
    if label_rule is not None:
        return label_rule
    if message_id == "dtype-mismatch" and trace.targets and trace.outputs:
        out, tgt = trace.outputs[0], trace.targets[0]
        if tgt.is_integer and out.is_floating:
            return ("dtype-mismatch",
                    f"targets are {tgt.dtype} but the outputs are {out.dtype}: backward fails in the loss",
                    ["Convert regression targets to floating point: targets.float() (in the dataset, once)."])
    if message_id == "no-gradient-flow":
        return ("no-gradient-flow", "the loss does not depend on any trainable parameter",
                ["Look for .detach(), .item(), .data, .numpy() or torch.no_grad() between the model and the loss.",
                 "Check that the parameters have requires_grad=True."])
    return None


CUDA_UNAVAILABLE = re.compile(r"not compiled with cuda|no nvidia driver|cuda driver|cuda is not available|"
                              r"found no nvidia", re.I)


def _message_rule(crash: CrashInfo, message_id: str | None) -> tuple[str, str, list[str]]:
    """A verdict from torch's message alone, when the structure said nothing."""
    place = crash.module.label if crash.module is not None else (
        f"your code ({crash.user_frame})" if crash.user_frame else f"the {crash.phase}")
    if message_id == "device-mismatch" and CUDA_UNAVAILABLE.search(crash.message):
        return ("device-mismatch", f"{place} puts a tensor on CUDA, which this machine does not have",
                ["Do not hard-code the device: create tensors on the input's device "
                 "(torch.zeros(..., device=x.device)) and move batches with .to(device).",
                 "Choose the device once: device = 'cuda' if torch.cuda.is_available() else 'cpu'."])
    if message_id == "device-mismatch":
        return ("device-mismatch", f"tensors on different devices meet in {place}",
                ["Create tensors inside forward on the input's device: torch.zeros(..., device=x.device).",
                 "Register fixed tensors as buffers (self.register_buffer) so model.to(device) moves them."])
    if message_id is None:
        return ("entrypoint-error", f"the training step raised {crash.exc_type} in {place}",
                ["Read your traceback below: the error is in your code, not in a layer dldoctor knows."])
    return (message_id, f"{place} raised {crash.exc_type}: {crash.first_line[:90]}", [])


def _trace_lines(trace: ForwardTrace, shown: int) -> list[str]:
    leaves = trace.leaf_calls()[-shown:]
    if not leaves:
        return []
    parts = [f"{display_path(c.path)} ({c.type_name}) {c.inputs[0].shape_str if c.inputs else '?'} -> "
             f"{c.outputs[0].shape_str if c.outputs else '?'}" for c in leaves]
    return ["shapes before the crash: " + "; ".join(parts)]


def classify(trace: ForwardTrace, catalogue_fixes: dict[str, tuple[str, ...]], shown: int = 6) -> CrashVerdict:
    """Turn a crashed trace into a verdict. ``trace.crash`` must be set."""
    crash = trace.crash
    assert crash is not None
    message_id = classify_message(crash.exc_type, crash.message)
    rule = None
    location = crash.phase
    if crash.is_oom:
        rule = ("out-of-memory", f"the training step ran out of memory in the {crash.phase}", [])
    elif crash.phase == "forward":
        if crash.module is not None:
            location = crash.module.display_path
            rule = _module_rule(crash.module)
        elif crash.exc_type == "BatchFormatError":
            rule = ("entrypoint-error", f"the batch cannot be unpacked: {crash.first_line}",
                    ["Return (inputs, targets) from the Dataset, or give the spec a 'forward'."])
        if crash.module is None:
            location = "spec forward" if crash.user_frame else "forward"
    elif crash.phase == "loss":
        location = "loss"
        rule = _loss_rule(trace, crash, message_id)
    elif crash.phase == "backward":
        location = "backward"
        rule = _backward_rule(trace, message_id)

    confidence = 0.95 if rule else (0.8 if message_id else 0.5)
    if rule is None:
        rule = _message_rule(crash, message_id)
    diagnosis_id, title, fixes = rule

    evidence = []
    if crash.module is not None and crash.phase == "forward":
        inputs = ", ".join(str(t) for t in crash.module.inputs[:3]) or "no tensors"
        evidence.append(f"{crash.module.label} got {inputs}")
    elif crash.phase in ("loss", "backward") and trace.outputs and trace.targets:
        evidence.append(f"loss inputs: outputs {trace.outputs[0]} on {trace.outputs[0].device}, "
                        f"targets {trace.targets[0]} on {trace.targets[0].device}"
                        + (f", targets in [{trace.target_range[0]:g}, {trace.target_range[1]:g}]"
                           if trace.target_range else ""))
    evidence += _trace_lines(trace, shown)
    evidence.append(f"torch said: {crash.exc_type}: {crash.first_line}")
    if crash.user_frame:
        evidence.append(f"in your code at {crash.user_frame}")
    metrics: dict[str, Any] = {"phase": crash.phase, "exception": crash.exc_type}
    if crash.module is not None:
        metrics["module_type"] = crash.module.type_name
        if crash.module.inputs:
            metrics["input_shape"] = crash.module.inputs[0].shape_str
        metrics.update({k: v for k, v in crash.module.settings.items() if isinstance(v, (int, str, bool))})
    if trace.outputs:
        metrics["output_shape"] = trace.outputs[0].shape_str
    if trace.targets:
        metrics["target_shape"] = trace.targets[0].shape_str
        metrics["target_dtype"] = trace.targets[0].dtype
    # A fix read off this case comes first; the catalogue's general ones fill up to three.
    all_fixes = list(fixes) + [f for f in catalogue_fixes.get(diagnosis_id, ()) if f not in fixes]
    return CrashVerdict(diagnosis_id, title, tuple(evidence), tuple(all_fixes[:max(3, len(fixes))]), metrics,
                        location, confidence)
