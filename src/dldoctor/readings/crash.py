"""Classify a crashed training step into a diagnosis, and localise it.

Structure first, message second: the failing module's settings (``in_features``,
``in_channels``, ...) and the tensors it got are compared directly, which works
whatever the wording of torch's error; the exception message decides only where
the structure says nothing (functional code in ``forward``, the loss, backward).
"""

from __future__ import annotations

import math
import re
from typing import Any

from dldoctor.core.judgement import Judgement
from dldoctor.core.severity import Severity
from dldoctor.probes.forward_trace import (
    CrashInfo,
    ForwardTrace,
    ModuleSnapshot,
    OutputItem,
    OutputStructure,
    display_path,
)
from dldoctor.runtime.tensors import TensorInfo

# Ordered: the first pattern that matches wins (device and dtype messages often
# also mention shapes or "expected", so they go first).
MESSAGE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("out-of-memory", re.compile(r"out of memory|can't allocate memory|cannot allocate memory", re.I)),
    ("device-mismatch", re.compile(
        r"type \(torch\.cuda\.\w+\) and \w+ type \(torch\.\w+Tensor\)|"
        r"type \(torch\.\w+Tensor\) and \w+ type \(torch\.cuda|same device|not compiled with cuda|no nvidia driver|"
        r"cuda driver|cuda is not available|"
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
                ["Move inputs to the model's device: inputs.to(next(model.parameters()).device).",
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
                    f"{where} ({m.type_name}, num_features={s['num_features']}) gets {x.shape[1]} channels: "
                    f"{_shape(x)}",
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
#: Losses that take class indices of shape [N] against scores of shape [N, C].
CLASS_INDEX_LOSSES = {"CrossEntropyLoss": "cross-entropy", "cross_entropy": "cross-entropy", "NLLLoss": "nll_loss",
                      "nll_loss": "nll_loss", "MultiMarginLoss": "multi_margin_loss",
                      "multi_margin_loss": "multi_margin_loss"}
MULTI_TARGET = re.compile(r"1D target tensor expected|multi-target not supported", re.I)


def _string_labels_rule(trace: ForwardTrace) -> tuple[str, str, list[str]] | None:
    """Targets that are text: the default collate turns str labels into a tuple of str."""
    if not trace.target_strings:
        return None
    shown = ", ".join(repr(s) for s in trace.target_strings[:3])
    more = ", ..." if trace.target_string_count > 3 else ""
    title = f"the targets are strings ({shown}{more}), not class indices"
    fixes = []
    if all(_is_number(s) for s in trace.target_strings):
        fixes.append("The labels are numbers stored as text: return int(label) (float(label) for a regression "
                     "target) from the Dataset's __getitem__.")
    fixes.append("Map the labels to integers once, in the Dataset: self.classes = sorted(set(labels)) in "
                 "__init__, then return self.classes.index(label) (an int) from __getitem__; "
                 "self.classes[i] turns a prediction back into its name.")
    fixes.append(f"Size the output layer to the number of classes ({trace.target_string_count} distinct labels "
                 "in this batch; count them over the whole dataset).")
    return ("dtype-mismatch", title, fixes)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _singleton_target_rule(trace: ForwardTrace, crash: CrashInfo, out: TensorInfo,
                           tgt: TensorInfo) -> tuple[str, str, list[str]] | None:
    """Integer targets [N, 1] into a loss that wants class indices [N] (against [N, C] scores)."""
    if not (tgt.is_integer and len(tgt.shape) == 2 and tgt.shape[1] == 1 and len(out.shape) == 2
            and out.shape[1] > 1 and out.shape[0] == tgt.shape[0]):
        return None
    loss = CLASS_INDEX_LOSSES.get(trace.loss_name)
    if loss is None and not MULTI_TARGET.search(crash.message):
        return None
    n = tgt.shape[0]
    return ("shape-mismatch",
            f"targets have a trailing singleton dimension {_shape(tgt)}; {loss or 'the loss'} wants [{n}]",
            ["Drop the extra dimension of the targets: targets.squeeze(1) (or y.view(-1)), once, in the Dataset "
             "(return the label as a 0-d tensor or an int, not a 1-element array).",
             'Or in the spec: "forward": lambda model, batch: (model(batch[0]), batch[1].squeeze(1)),'])


def _spec_forward_output_rule(trace: ForwardTrace) -> tuple[str, str, list[str]] | None:
    """The spec's forward hands the loss a container (or no tensor) as its outputs, and the loss raised."""
    structure = trace.output_structure
    if structure is None or structure.kind == "tensor":
        return None
    pick, _ = pick_prediction(structure, trace.targets, trace.target_range)
    title = f"the spec's forward returns {_a(structure.type_name)} as outputs ({_contents(structure)}); " \
            "loss_fn cannot take it"
    if pick is None:
        return ("entrypoint-error", title, ["Make the spec's forward return (outputs, targets) where outputs is "
                                            "the model's prediction tensor."])
    return ("entrypoint-error", title,
            [f"Make the spec's forward return the predictions, not the whole {structure.type_name}: "
             f"model(...){pick.access} ({pick.tensor})."])


def _data_rule(trace: ForwardTrace, crash: CrashInfo, message_id: str | None) -> tuple[str, str, list[str]] | None:
    """A loss or backward crash caused by what the Dataset returns as targets."""
    strings = _string_labels_rule(trace)
    if strings is not None or message_id in ("device-mismatch", "out-of-memory"):
        return strings
    if crash.phase == "loss" and trace.outputs and trace.targets and (
            trace.output_structure is None or trace.output_structure.kind == "tensor"):
        return _singleton_target_rule(trace, crash, trace.outputs[0], trace.targets[0])
    return None


def _loss_rule(trace: ForwardTrace, crash: CrashInfo, message_id: str | None) -> tuple[str, str, list[str]] | None:
    spec_forward = _spec_forward_output_rule(trace)
    if spec_forward is not None:
        return spec_forward
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


def _message_rule(crash: CrashInfo, message_id: str | None, trace: ForwardTrace) -> tuple[str, str, list[str]]:
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
        if has_user_traceback(crash):
            fix = "Read your traceback below: the error is in your code, not in a layer dldoctor knows."
        else:
            given = ""
            if crash.phase in ("loss", "backward") and trace.outputs and trace.targets:
                given = f" (outputs {trace.outputs[0]}, targets {trace.targets[0]})"
            elif crash.module is not None and crash.module.inputs:
                given = f" ({', '.join(str(t) for t in crash.module.inputs[:3])})"
            what = trace.loss_name if crash.phase == "loss" and trace.loss_name else f"the {crash.phase}"
            fix = (f"The error is inside {what}, with no line of your code on the way: compare what it got{given} "
                   "with the shapes and dtypes its documentation asks for.")
        return ("entrypoint-error", f"the training step raised {crash.exc_type} in {place}", [fix])
    return (message_id, f"{place} raised {crash.exc_type}: {crash.first_line[:90]}", [])


def has_user_traceback(crash: CrashInfo) -> bool:
    """Whether the crash went through the user's code (their trimmed traceback has frames)."""
    return crash.user_traceback.startswith("Traceback")


# -- the spec's contract, broken without (or before) an exception ----------------------
def _contents(structure: OutputStructure, shown: int = 4) -> str:
    """``keys 'logits' [16, 3], 'hidden' [16, 8]``: what a container holds, shapes only."""
    parts = [f"{i.label} {i.tensor.shape_str if i.tensor is not None else i.type_name}"
             for i in structure.items[:shown]]
    if structure.length > shown:
        parts.append(f"... {structure.length} in all")
    head = {"mapping": "keys ", "fields": "fields "}.get(structure.kind, f"{structure.length} items: ")
    return head + ", ".join(parts) if parts else f"{structure.length} items, none a tensor"


def pick_prediction(structure: OutputStructure, targets: tuple[TensorInfo, ...],
                    target_range: tuple[float, float] | None) -> tuple[OutputItem | None, bool]:
    """The entry of a model's container output that holds the predictions, and whether that is sure.

    A ``logits`` entry (the HuggingFace convention) or the only tensor is sure; otherwise
    the tensors shaped like predictions for these targets are measured: class scores
    ``[N, C]`` with ``C`` above the largest class index for ``[N]`` integer targets,
    else as many values per sample as the targets. One such tensor is sure; several
    (or none) give the first, unsure.
    """
    tensors = structure.tensors
    if not tensors:
        return None, False
    for item in tensors:
        if item.access in ('["logits"]', ".logits"):
            return item, True
    if len(tensors) == 1:
        return tensors[0], True
    tgt = targets[0] if targets else None
    if tgt is None or not tgt.shape:
        return tensors[0], False

    def fits(t: TensorInfo) -> bool:
        if not t.is_floating or not t.shape or t.shape[0] != tgt.shape[0]:
            return False
        scores = len(t.shape) == 2 and t.shape[1] > 1
        if tgt.is_integer and len(tgt.shape) == 1 and target_range is not None and target_range[1] >= 2:
            return scores and t.shape[1] > target_range[1]  # more than two classes: only scores fit
        if tgt.is_integer and len(tgt.shape) == 1 and scores:
            return True
        return math.prod(t.shape) == math.prod(tgt.shape)

    fitting = [i for i in tensors if i.tensor is not None and fits(i.tensor)]
    if len(fitting) == 1:
        return fitting[0], True
    return (fitting or tensors)[0], False


def _model_output_rule(trace: ForwardTrace, crash: CrashInfo) -> tuple[str, str, list[str], list[str]]:
    """(id, title, fixes, evidence): the model returned no plain tensor and the spec has no forward."""
    s = trace.output_structure
    assert s is not None
    evidence = [f"the model returned {_a(s.type_name)}: {s.summary()}" if s.items
                else f"the model returned {_a(s.type_name)}" + (f" ({s.value})" if s.value else "")]
    if crash.loss_error:
        evidence.append(f"loss_fn(outputs, targets) on it raised {crash.loss_error}")
    elif s.tensors:
        evidence.append(f"loss_fn took the {s.type_name} without raising, but nothing tells dldoctor which "
                        "entry is the prediction (it reads accuracy, probabilities and gradients from it)")
    if s.type_name == "NoneType":
        return ("entrypoint-error", "the model's forward returns None, not a tensor",
                ["End the model's forward with return and the output tensor (a missing return statement?)."],
                evidence)
    if not s.tensors:
        what = _a(_numpy_named(s.type_name)) + (f" ({s.value})" if s.value else "") if s.kind == "other" else \
            f"{_a(s.type_name)} ({_contents(s)})"
        return ("entrypoint-error", f"the model returns {what}, not a tensor",
                ["Return a tensor from the model's forward, computed with torch operations (no .numpy(), .item() "
                 "or .tolist() on the way), so that backward reaches the parameters."], evidence)
    pick, sure = pick_prediction(s, trace.targets, trace.target_range)
    assert pick is not None and pick.tensor is not None
    title = f"the model returns {_a(s.type_name)} ({_contents(s)}), not a tensor, and the spec has no 'forward'"
    key = f'"forward": lambda model, batch: (model(batch[0]){pick.access}, batch[1]),'
    guess = "" if sure else (f" ({pick.access} is a guess: other entries have the same shape; use the one that holds "
                             "the predictions)")
    pick_fix = f"Add to the spec, to give the loss the predictions {pick.access} {pick.tensor.shape_str}: {key}{guess}"
    first = s.tensors[0]
    whole_fix = (f"If loss_fn reads the whole {s.type_name} on purpose, say so in the spec: "
                 f'"forward": lambda model, batch: (model(batch[0]), batch[1]), (dldoctor then takes {first.access} '
                 f"{first.tensor.shape_str if first.tensor is not None else '?'} as the predictions)")
    return ("entrypoint-error", title, [pick_fix, whole_fix] if crash.loss_error else [whole_fix, pick_fix],
            evidence)


def _a(name: str) -> str:
    """``a tuple``, ``an OrderedDict``."""
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _numpy_named(type_name: str) -> str:
    """``numpy array`` for ``ndarray``, ``numpy float32`` for a numpy scalar; other names as they are."""
    if type_name == "ndarray":
        return "numpy array"
    return f"numpy {type_name}" if re.fullmatch(r"(float|int|uint|complex)\d+", type_name) else type_name


def _torch_name(name: str) -> str:
    from torch import nn

    return f"nn.{name}" if name and isinstance(getattr(nn, name, None), type) else name


def _loss_not_tensor_rule(trace: ForwardTrace) -> tuple[str, str, list[str], list[str]]:
    r = trace.loss_structure
    assert r is not None
    evidence = [f"loss_fn(outputs, targets) returned {_a(_numpy_named(r.type_name))}"
                + (f": {r.summary()}" if r.items else f" ({r.value})" if r.value else "")]
    if r.type_name == "NoneType":
        return ("entrypoint-error", "loss_fn returned None, not a tensor",
                ["End loss_fn with return and the loss tensor (a missing return statement?)."], evidence)
    if r.kind == "other" and r.value:  # a Python or numpy number
        fixes = ["Return the loss tensor itself: remove .item() / float() inside the loss (call them only to log "
                 "the value), so backward can reach the model through its graph."]
        if r.type_name not in ("float", "int", "bool"):
            fixes.insert(0, "Keep the loss in torch: remove .numpy() / .detach() and the numpy operations inside "
                            "the loss (torch has the same functions).")
        return ("entrypoint-error",
                f"loss_fn returned {_a(_numpy_named(r.type_name))} ({r.value}), not a tensor: "
                "it must return a tensor with its graph",
                fixes, evidence)
    if r.type_name == "ndarray":
        return ("entrypoint-error", "loss_fn returned a numpy array, not a tensor: it must return a tensor with its "
                "graph", ["Keep the loss in torch: remove .numpy() / .detach() inside the loss and return a 0-d "
                          "tensor (reduce with .mean())."], evidence)
    scalars = [i for i in r.tensors if i.tensor is not None and math.prod(i.tensor.shape) == 1]
    if r.kind != "other" and scalars:
        pick = scalars[0]
        name = trace.loss_name
        if name and name.isidentifier() and not _torch_name(name).startswith("nn."):
            way = f'pick it out in the spec: "loss_fn": lambda outputs, targets: {name}(outputs, targets){pick.access},'
        else:
            way = f"return only {pick.access} from the loss"
        return ("entrypoint-error", f"loss_fn returned {_a(_numpy_named(r.type_name))} ({_contents(r)}), not a tensor",
                [f"Return the loss alone: {way} (log the other values yourself)."], evidence)
    return ("entrypoint-error", f"loss_fn returned {_a(_numpy_named(r.type_name))}, not a tensor",
            ["Return the loss as a 0-d tensor computed from the outputs with torch operations."], evidence)


def _loss_not_scalar_rule(trace: ForwardTrace) -> tuple[str, str, list[str], list[str]]:
    shape = trace.loss_shape or ()
    shape_str = f"[{', '.join(map(str, shape))}]"
    batch = trace.outputs[0].shape[0] if trace.outputs and trace.outputs[0].shape else None
    per = ""
    if trace.outputs and shape == trace.outputs[0].shape and len(shape) > 1:
        per = " (one loss per output value)"
    elif len(shape) == 1 and shape[0] == batch:
        per = " (one loss per sample)"
    title = f"loss_fn returns a {shape_str} tensor{per}, not a scalar: backward needs a single number"
    if trace.loss_reduction == "none":
        name = _torch_name(trace.loss_name)
        fixes = [f"Use reduction='mean' (the default): {name}() rather than {name}(reduction='none') "
                 "(or call .mean() on it inside loss_fn)."]
    else:
        fixes = ["Reduce the loss to one number inside loss_fn: return loss.mean() (or use reduction='mean')."]
    fixes.append("To weight samples on purpose, multiply before reducing: (loss * weights).mean().")
    evidence = [f"loss_fn(outputs, targets) returned a tensor of shape {shape_str}"
                + (f" with reduction={trace.loss_reduction!r}" if trace.loss_reduction else "")]
    return ("entrypoint-error", title, fixes, evidence)


CONTRACT_RULES = {"model-output": _model_output_rule, "loss-not-tensor": lambda t, c: _loss_not_tensor_rule(t),
                  "loss-not-scalar": lambda t, c: _loss_not_scalar_rule(t)}


def _contract_verdict(trace: ForwardTrace, crash: CrashInfo, shown: int) -> Judgement:
    """A step that broke the spec's contract (``crash.kind``): a fatal entrypoint-error."""
    diagnosis_id, title, fixes, evidence = CONTRACT_RULES[crash.kind](trace, crash)
    if trace.targets and crash.kind != "model-output":
        evidence.append(f"loss inputs: outputs {trace.outputs[0] if trace.outputs else '?'}, "
                        f"targets {trace.targets[0]}")
    elif trace.targets:
        evidence.append(f"targets {trace.targets[0]}")
    evidence += _trace_lines(trace, shown)
    fallback = "model" if crash.kind == "model-output" else "loss"
    metrics: dict[str, Any] = {"phase": crash.phase, "problem": crash.kind, "fatal": True}
    structure = trace.output_structure if crash.kind == "model-output" else trace.loss_structure
    if structure is not None:
        metrics["returned_type"] = structure.type_name
        if structure.items:
            metrics["returned_entries"] = [i.label for i in structure.items]
    if crash.kind == "loss-not-scalar" and trace.loss_shape is not None:
        metrics["loss_shape"] = list(trace.loss_shape)
    return Judgement(diagnosis_id, Severity.ERROR, 1.0, title, tuple(evidence), tuple(fixes), metrics,
                     crash.user_frame or fallback)


def _trace_lines(trace: ForwardTrace, shown: int) -> list[str]:
    leaves = trace.leaf_calls()[-shown:]
    if not leaves:
        return []
    parts = [f"{display_path(c.path)} ({c.type_name}) {c.inputs[0].shape_str if c.inputs else '?'} -> "
             f"{c.outputs[0].shape_str if c.outputs else '?'}" for c in leaves]
    return ["shapes before the crash: " + "; ".join(parts)]


def classify(trace: ForwardTrace, catalogue_fixes: dict[str, tuple[str, ...]], shown: int = 6,
             data_location: str = "") -> Judgement:
    """Turn a crashed trace into a verdict. ``trace.crash`` must be set.

    ``data_location``: the user's ``file:line`` of the Dataset's ``__getitem__``, the
    location of a crash caused by what the Dataset returns (text labels, ...).
    The user's trimmed traceback goes into the evidence whenever it has frames of
    theirs; no fix refers to a traceback the finding does not carry.
    """
    crash = trace.crash
    assert crash is not None
    if crash.kind:
        return _contract_verdict(trace, crash, shown)
    message_id = classify_message(crash.exc_type, crash.message)
    rule: tuple[str, str, list[str]] | None = None
    precise = False  # the rule's fixes are complete: no general catalogue fixes after them
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
    elif crash.phase in ("loss", "backward"):
        location = crash.phase
        rule = _data_rule(trace, crash, message_id)
        if rule is not None:
            location = data_location or location
            precise = True
        elif crash.phase == "loss":
            rule = _loss_rule(trace, crash, message_id)
            if rule is not None and rule[0] == "entrypoint-error":  # the spec's forward hands over a container
                precise, location = True, "spec forward"
        else:
            rule = _backward_rule(trace, message_id)

    confidence = 0.95 if rule else (0.8 if message_id else 0.5)
    if rule is None:
        rule = _message_rule(crash, message_id, trace)
    diagnosis_id, title, fixes = rule

    evidence = []
    structure = trace.output_structure
    if crash.module is not None and crash.phase == "forward":
        inputs = ", ".join(str(t) for t in crash.module.inputs[:3]) or "no tensors"
        evidence.append(f"{crash.module.label} got {inputs}")
    elif crash.phase in ("loss", "backward") and trace.target_strings:
        shown_labels = ", ".join(repr(s) for s in trace.target_strings)
        evidence.append(f"loss inputs: outputs {trace.outputs[0] if trace.outputs else '?'}, targets: text labels "
                        f"({shown_labels}{', ...' if trace.target_string_count > len(trace.target_strings) else ''};"
                        f" {trace.target_string_count} distinct in the batch)")
    elif crash.phase in ("loss", "backward") and structure is not None and structure.kind != "tensor":
        evidence.append(f"loss inputs: outputs {_a(structure.type_name)} ({structure.summary()}), targets "
                        f"{trace.targets[0] if trace.targets else '?'}")
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
    if has_user_traceback(crash):
        evidence.append(crash.user_traceback)
    # A fix read off this case comes first; the catalogue's general ones fill up to three.
    all_fixes = list(fixes) + [f for f in catalogue_fixes.get(diagnosis_id, ()) if f not in fixes and not precise]
    if not has_user_traceback(crash):
        all_fixes = [f for f in all_fixes if "traceback" not in f.lower()]
    return Judgement(diagnosis_id, Severity.ERROR, confidence, title, tuple(evidence),
                     tuple(all_fixes[:max(3, len(fixes))]), metrics, location)
