"""Run one batch forward, through the loss and backward, recording every module call.

Module hooks record each module's input and output shapes, dtypes and devices in
execution order. When something raises, the module whose ``forward`` was running
innermost is the one that failed; the probe snapshots it (its settings such as
``in_features``, its parameters' dtype/device, the inputs it got) so a check can
say what it expected and what it got. All hooks are removed in ``finally``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dldoctor.loading.user_traceback import _is_library, exception_line, format_user_traceback, innermost_user_frame
from dldoctor.runtime.tensors import TensorInfo, all_finite, describe, describe_all, iter_tensors, stored_values

#: Module attributes that say what input a layer expects.
SETTING_ATTRS = (
    "in_features", "out_features", "in_channels", "out_channels", "num_embeddings", "embedding_dim",
    "input_size", "hidden_size", "embed_dim", "d_model", "normalized_shape", "num_features", "batch_first",
    "kernel_size", "stride", "padding",
)


def display_path(path: str) -> str:
    """A module path as the user would write it: ``model``, ``model[6]``, ``encoder.layers.0``."""
    if not path:
        return "model"
    head, _, rest = path.partition(".")
    if head.isdigit():
        return f"model[{head}]" + (f".{rest}" if rest else "")
    return path


@dataclasses.dataclass(frozen=True)
class ActStats:
    """Summary numbers of one floating-point tensor (a module's first output).

    ``min``, ``max`` and ``frac_zero`` are over its finite values (NaN when it has none).
    """

    numel: int
    min: float
    max: float
    frac_zero: float
    frac_nonfinite: float


def act_stats(t: torch.Tensor) -> ActStats | None:
    """Summary statistics of a floating tensor; None for other tensors.

    Hooks call this on every module output, so it takes only what checks read, in
    two reductions (min/max, which also show whether every value is finite, and a
    count of non-zeros); only a tensor holding NaN/Inf pays for masking them out.
    (Measured on a 65k-element activation on one CPU thread: a comparison that
    makes a bool tensor costs ~50 us, ``isfinite().all()`` ~165 us, ``std_mean``
    ~450 us, ``aminmax`` ~18 us and ``count_nonzero`` ~38 us.)
    """
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
        return None
    with torch.no_grad():
        x = t.detach()
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()
        flat = x.reshape(-1)
        n = flat.numel()
        lo, hi = torch.stack(torch.aminmax(flat)).tolist()
        if math.isfinite(lo) and math.isfinite(hi):
            return ActStats(n, lo, hi, 1.0 - int(torch.count_nonzero(flat)) / n, 0.0)
        finite = flat[torch.isfinite(flat)]
        if finite.numel() == 0:
            return ActStats(n, math.nan, math.nan, 0.0, 1.0)
        return ActStats(n, float(finite.min()), float(finite.max()),
                        1.0 - int(torch.count_nonzero(finite)) / finite.numel(), 1.0 - finite.numel() / n)


@dataclasses.dataclass(frozen=True)
class ModuleCall:
    """One completed call of a module, with statistics of its first output."""

    path: str
    type_name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    is_leaf: bool
    stats: ActStats | None = None
    input_nonfinite: bool = False


@dataclasses.dataclass(frozen=True)
class ParamGrad:
    """One parameter after the backward pass of the traced step."""

    name: str
    module_path: str
    shape: tuple[int, ...]
    requires_grad: bool
    has_grad: bool
    grad_norm: float
    grad_abs_max: float
    grad_nonfinite: bool
    param_norm: float
    numel: int


@dataclasses.dataclass(frozen=True)
class OutputSummary:
    """What the model's (first) output looks like, for judging what the loss gets.

    ``row_sum_dev`` is the mean |sum over dim 1 - 1| (probabilities give ~0);
    ``exp_row_sum_dev`` the same for exp(output) (log-probabilities give ~0).
    """

    min: float
    max: float
    mean: float
    std: float
    frac_in_01: float
    row_sum_dev: float | None
    exp_row_sum_dev: float | None
    frac_nonfinite: float


def output_summary(t: torch.Tensor) -> OutputSummary | None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
        return None
    with torch.no_grad():
        x = t.detach().float()
        finite = torch.isfinite(x)
        xf = x[finite]
        if xf.numel() == 0:
            nan = float("nan")
            return OutputSummary(nan, nan, nan, nan, 0.0, None, None, 1.0)
        row = exp_row = None
        if x.dim() >= 2 and x.shape[1] > 1 and bool(finite.all()):
            row = float((x.sum(dim=1) - 1).abs().mean())
            exp_row = float((x.clamp(max=80).exp().sum(dim=1) - 1).abs().mean())
        return OutputSummary(
            min=float(xf.min()), max=float(xf.max()), mean=float(xf.mean()),
            std=float(xf.std()) if xf.numel() > 1 else 0.0,
            frac_in_01=float(((xf >= 0) & (xf <= 1)).float().mean()), row_sum_dev=row,
            exp_row_sum_dev=exp_row, frac_nonfinite=1.0 - float(finite.float().mean()),
        )


@dataclasses.dataclass(frozen=True)
class OutputItem:
    """One entry of a container a forward (or a loss) returned."""

    label: str  # as shown: 'logits', [0], logits
    access: str  # how to reach it in code: ["logits"], [0], .logits
    tensor: TensorInfo | None  # None when the entry is not a tensor
    type_name: str  # Tensor, or the entry's type

    def __str__(self) -> str:
        return f"{self.label} {self.tensor if self.tensor is not None else self.type_name}"


@dataclasses.dataclass(frozen=True)
class OutputStructure:
    """What a forward returned as its outputs (or a loss as its value), as plain data.

    ``kind``: ``tensor``; ``mapping`` (a dict, a HuggingFace ``ModelOutput``);
    ``sequence`` (a tuple or list); ``fields`` (a named tuple, a dataclass, an object
    holding tensors as attributes); ``other`` (None, a number, a numpy array, ...).
    """

    type_name: str
    kind: str
    items: tuple[OutputItem, ...] = ()
    length: int = 0
    value: str = ""  # a number's value, for ``other``

    @property
    def tensors(self) -> list[OutputItem]:
        return [i for i in self.items if i.tensor is not None]

    def summary(self, shown: int = 4) -> str:
        """``'logits' [16, 3] float32, 'hidden' [16, 8] float32`` (at most ``shown`` entries)."""
        parts = [str(i) for i in self.items[:shown]]
        if self.length > shown:
            parts.append(f"... ({self.length} in all)")
        return ", ".join(parts)


_MAX_ITEMS = 16


def _item(label: str, access: str, value: Any) -> OutputItem:
    if isinstance(value, torch.Tensor):
        return OutputItem(label, access, describe(value), "Tensor")
    return OutputItem(label, access, None, type(value).__name__)


def _key_access(key: Any) -> str:
    return f'["{key}"]' if isinstance(key, str) and '"' not in key else f"[{key!r}]"


def describe_structure(obj: Any) -> OutputStructure:
    """The shape of what a forward or a loss returned: a tensor, or what a container holds."""
    name = type(obj).__name__
    if isinstance(obj, torch.Tensor):
        return OutputStructure(name, "tensor")
    if isinstance(obj, Mapping):
        items = [_item(repr(k), _key_access(k), v) for k, v in list(obj.items())[:_MAX_ITEMS]]
        return OutputStructure(name, "mapping", tuple(items), len(obj))
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        items = [_item(f, f".{f}", getattr(obj, f)) for f in obj._fields[:_MAX_ITEMS]]
        return OutputStructure(name, "fields", tuple(items), len(obj._fields))
    if isinstance(obj, (tuple, list)):
        items = [_item(f"[{i}]", f"[{i}]", v) for i, v in enumerate(obj[:_MAX_ITEMS])]
        return OutputStructure(name, "sequence", tuple(items), len(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = [f.name for f in dataclasses.fields(obj)]
        items = [_item(f, f".{f}", getattr(obj, f, None)) for f in fields[:_MAX_ITEMS]]
        return OutputStructure(name, "fields", tuple(items), len(fields))
    attrs = [(k, v) for k, v in getattr(obj, "__dict__", {}).items() if isinstance(v, torch.Tensor)]
    if attrs and not hasattr(obj, "__array__"):  # an object holding its outputs as attributes
        items = [_item(k, f".{k}", v) for k, v in attrs[:_MAX_ITEMS]]
        return OutputStructure(name, "fields", tuple(items), len(attrs))
    return OutputStructure(name, "other", value=_scalar_value(obj))


def _scalar_value(obj: Any) -> str:
    """The value of a Python or numpy number (or a one-element array), or ""."""
    if obj is None or isinstance(obj, (bool, str, bytes)):
        return ""
    try:
        if isinstance(obj, numbers.Number) or getattr(obj, "size", None) == 1:
            return f"{float(obj):.4g}"
    except (TypeError, ValueError):
        pass
    return ""


def string_labels(targets: Any, shown: int = 5) -> tuple[tuple[str, ...], int]:
    """The first distinct values of targets that are text (the default collate of str
    labels gives a tuple or list of str), and how many distinct there are; ((), 0) otherwise."""
    if not isinstance(targets, (tuple, list)) or not targets:
        return (), 0
    if not all(isinstance(t, (str, bytes)) for t in targets):
        return (), 0
    distinct = list(dict.fromkeys(t.decode(errors="replace") if isinstance(t, bytes) else t for t in targets))
    return tuple(distinct[:shown]), len(distinct)


def code_location(fn: Any, roots: Iterable[Path] = ()) -> str:
    """``file:line`` where the user defined ``fn`` (a function, a lambda, a callable object,
    an ``nn.Module``'s ``forward``); "" when it is library code or has no source."""
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    if isinstance(target, nn.Module):
        target = type(target).forward
    elif not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", None)  # noqa: B004 - fetches the method, not a callability test
    try:
        code = inspect.unwrap(target).__code__
    except (AttributeError, ValueError):
        return ""
    filename = code.co_filename
    if _is_library(filename):
        return ""
    root_strs = tuple(str(Path(r).resolve()) for r in roots)
    if root_strs and not os.path.realpath(filename).startswith(root_strs):
        return ""
    return f"{Path(filename).name}:{code.co_firstlineno}"


@dataclasses.dataclass(frozen=True)
class ModuleSnapshot:
    """The module that was running when something raised."""

    path: str
    type_name: str
    settings: dict[str, Any]
    inputs: tuple[TensorInfo, ...]
    params: tuple[tuple[str, TensorInfo], ...]
    integer_input_range: tuple[int, int] | None = None

    @property
    def display_path(self) -> str:
        """``model[6]`` for a top-level Sequential child, ``classifier.0`` otherwise."""
        return display_path(self.path)

    @property
    def label(self) -> str:
        shown = {k: v for k, v in self.settings.items() if k in ("in_features", "in_channels", "num_embeddings",
                                                                   "input_size", "embed_dim", "num_features",
                                                                   "normalized_shape")}
        inner = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.display_path} ({self.type_name}{', ' + inner if inner else ''})"


@dataclasses.dataclass(frozen=True)
class CrashInfo:
    """Where and how the step raised, or why it could not go on.

    ``kind`` is "" for an exception; otherwise the step broke the spec's contract
    without raising (or before it would): ``model-output`` (the model returned a
    container or no tensor, and the spec has no ``forward`` to say what the
    predictions are), ``loss-not-tensor``, ``loss-not-scalar``.
    """

    phase: str  # "forward", "model output", "loss" or "backward"
    exc_type: str
    message: str
    module: ModuleSnapshot | None
    user_traceback: str
    user_frame: str
    is_oom: bool
    kind: str = ""
    loss_error: str = ""  # model-output: what the loss raised on that output ("" when it took it)

    @property
    def first_line(self) -> str:
        lines = self.message.strip().splitlines()
        return lines[0] if lines else ""


@dataclasses.dataclass(frozen=True)
class ForwardTrace:
    """What one forward/loss/backward step did, as plain data."""

    calls: tuple[ModuleCall, ...]
    crash: CrashInfo | None
    outputs: tuple[TensorInfo, ...] = ()
    targets: tuple[TensorInfo, ...] = ()
    target_range: tuple[float, float] | None = None
    loss_value: float | None = None
    loss_shape: tuple[int, ...] | None = None
    param_dtype: str = ""
    param_device: str = ""
    output_summary: OutputSummary | None = None
    grads: tuple[ParamGrad, ...] = ()
    loss_name: str = ""
    output_structure: OutputStructure | None = None
    loss_structure: OutputStructure | None = None
    target_strings: tuple[str, ...] = ()
    target_string_count: int = 0
    loss_reduction: str | None = None
    loss_location: str = ""
    model_location: str = ""

    @property
    def ok(self) -> bool:
        return self.crash is None

    def leaf_calls(self) -> list[ModuleCall]:
        return [c for c in self.calls if c.is_leaf]


def _settings(module: nn.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in SETTING_ATTRS:
        value = getattr(module, attr, None)
        if isinstance(value, (int, bool, str)) or (isinstance(value, tuple) and all(isinstance(v, int) for v in value)):
            out[attr] = value
    return out


def _params(module: nn.Module) -> tuple[tuple[str, TensorInfo], ...]:
    own = list(module.named_parameters(recurse=False)) or list(module.named_parameters())[:2]
    return tuple((name, describe(p)) for name, p in own[:4])


def _integer_range(args: Iterable[Any]) -> tuple[int, int] | None:
    for t in iter_tensors(list(args)):
        if not t.is_floating_point() and not t.is_complex() and t.numel() > 0 and t.dtype != torch.bool:
            return int(t.min().item()), int(t.max().item())
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text


class _Recorder:
    """Hooks every module of a model; keeps the call stack and the completed calls."""

    def __init__(self, model: nn.Module):
        self.paths: dict[nn.Module, str] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(module, name)
        self.stack: list[tuple[nn.Module, tuple[Any, ...], dict[str, Any]]] = []
        self.calls: list[ModuleCall] = []
        self.handles = []
        for module in self.paths:
            self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(module.register_forward_hook(self._post, with_kwargs=True))

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.stack.append((module, args, kwargs))

    def _post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if self.stack and self.stack[-1][0] is module:
            self.stack.pop()
        first = next(iter_tensors(output), None)
        first_in = next(iter_tensors((args, kwargs)), None)
        input_nonfinite = first_in is not None and not all_finite(first_in)
        self.calls.append(ModuleCall(
            path=self.paths.get(module, "?"),
            type_name=type(module).__name__,
            inputs=describe_all((args, kwargs)),
            outputs=describe_all(output),
            is_leaf=not any(True for _ in module.children()),
            stats=act_stats(first) if first is not None else None,
            input_nonfinite=input_nonfinite,
        ))

    def failing_module(self) -> ModuleSnapshot | None:
        if not self.stack:
            return None
        module, args, kwargs = self.stack[-1]
        return ModuleSnapshot(
            path=self.paths.get(module, "?"),
            type_name=type(module).__name__,
            settings=_settings(module),
            inputs=describe_all((args, kwargs)),
            params=_params(module),
            integer_input_range=_integer_range(args) if isinstance(module, nn.Embedding) else None,
        )

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _crash(phase: str, exc: BaseException, module: ModuleSnapshot | None, roots: tuple[Path, ...]) -> CrashInfo:
    return CrashInfo(
        phase=phase,
        exc_type=type(exc).__name__,
        message=str(exc),
        module=module,
        user_traceback=format_user_traceback(exc, roots),
        user_frame=innermost_user_frame(exc, roots),
        is_oom=is_out_of_memory(exc),
    )


def _contract_crash(phase: str, kind: str, exc_type: str, message: str, where: str, loss_error: str = "") -> CrashInfo:
    return CrashInfo(phase=phase, exc_type=exc_type, message=message, module=None, user_traceback="",
                     user_frame=where, is_oom=False, kind=kind, loss_error=loss_error)


def _is_default_forward(forward: Callable[..., Any]) -> bool:
    """Whether ``forward`` is dldoctor's ``model(inputs), targets`` (the spec gave none)."""
    from dldoctor.core.context import default_forward

    return forward is default_forward


def trace_step(
    model: nn.Module,
    batch: Any,
    forward: Callable[[nn.Module, Any], tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Any],
    roots: tuple[Path, ...] = (),
    tensor_outputs: bool | None = None,
) -> ForwardTrace:
    """Run forward, loss and backward on ``model`` (a copy: it gets gradients) and trace it.

    Without a spec ``forward``, a model that returns anything but a tensor stops the
    step before the loss (``kind="model-output"``): nothing says which of its outputs
    are the predictions. A loss that returns no tensor, or a tensor of more than one
    element, stops it before backward. ``tensor_outputs``: whether the outputs must be
    a tensor (None: when ``forward`` is dldoctor's default one).
    """
    param = next(iter(model.parameters()), None)
    reduction = getattr(loss_fn, "reduction", None)
    base: dict[str, Any] = dict(param_dtype=describe(param).dtype if param is not None else "",
                param_device=str(param.device) if param is not None else "",
                loss_reduction=reduction if isinstance(reduction, str) else None,
                loss_location=code_location(loss_fn, roots), model_location=code_location(model, roots))
    model.train()
    recorder = _Recorder(model)
    outputs = targets = None
    phase = "forward"
    try:
        try:
            outputs, targets = forward(model, batch)
        except Exception as exc:
            return ForwardTrace(tuple(recorder.calls), _crash("forward", exc, recorder.failing_module(), roots), **base)
    finally:
        recorder.remove()
    out_info = describe_all(outputs)
    tgt_info = describe_all(targets)
    target_range = None
    tgt = next(iter_tensors(targets), None)
    if tgt is not None and tgt.numel() > 0 and not tgt.is_complex():
        with torch.no_grad():
            target_range = (float(tgt.min().item()), float(tgt.max().item()))
    first_out = next(iter_tensors(outputs), None)
    loss_name = type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else getattr(loss_fn, "__name__", "")
    structure = describe_structure(outputs)
    strings, n_strings = string_labels(targets)
    common: dict[str, Any] = dict(outputs=out_info, targets=tgt_info, target_range=target_range, loss_name=loss_name,
                  output_summary=output_summary(first_out) if first_out is not None else None,
                  output_structure=structure, target_strings=strings, target_string_count=n_strings, **base)
    calls = tuple(recorder.calls)
    if tensor_outputs is None:
        tensor_outputs = _is_default_forward(forward)
    if structure.kind != "tensor" and tensor_outputs:
        try:  # does the loss take it anyway (a custom loss that indexes the tuple)?
            loss_fn(outputs, targets)
            loss_error = ""
        except Exception as exc:
            loss_error = exception_line(exc)
        crash = _contract_crash("model output", "model-output", f"{structure.type_name} output",
                                f"the model returned a {structure.type_name}, not a tensor",
                                base["model_location"], loss_error)
        return ForwardTrace(calls, crash, **common)
    try:
        phase = "loss"
        loss = loss_fn(outputs, targets)
        if not isinstance(loss, torch.Tensor):
            returned = describe_structure(loss)
            crash = _contract_crash("loss", "loss-not-tensor", f"{returned.type_name} returned",
                                    f"loss_fn returned a {returned.type_name}, not a tensor", base["loss_location"])
            return ForwardTrace(calls, crash, loss_structure=returned, **common)
        loss_shape = tuple(loss.shape)
        if loss.numel() != 1:
            crash = _contract_crash("loss", "loss-not-scalar", "non-scalar loss",
                                    f"loss_fn returned a tensor of shape {list(loss.shape)}, not a scalar",
                                    base["loss_location"])
            return ForwardTrace(calls, crash, loss_shape=loss_shape, **common)
        loss_value = float(loss.detach().item())
        phase = "backward"
        loss.backward()
    except Exception as exc:
        return ForwardTrace(tuple(recorder.calls), _crash(phase, exc, None, roots), **common)
    return ForwardTrace(tuple(recorder.calls), None, loss_value=loss_value, loss_shape=loss_shape,
                        grads=_param_grads(model), **common)


def _param_grads(model: nn.Module) -> tuple[ParamGrad, ...]:
    out = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = stored_values(p.grad) if p.grad is not None else None
            has = g is not None
            finite = all_finite(g) if g is not None else True
            out.append(ParamGrad(
                name=name, module_path=name.rpartition(".")[0], shape=tuple(p.shape), requires_grad=p.requires_grad,
                has_grad=has,
                grad_norm=float(g.float().norm()) if g is not None and finite else (0.0 if not has else float("nan")),
                grad_abs_max=float(g.abs().max()) if g is not None and finite and g.numel() else 0.0,
                grad_nonfinite=not finite,
                param_norm=float(p.detach().float().norm()), numel=p.numel(),
            ))
    return tuple(out)
