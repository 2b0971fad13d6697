"""Where NaN and Inf come from: the data, the forward pass, the loss or backward.

Three measurements, cheapest first:

- ``scan_batch`` counts non-finite values in a batch's floating tensors (no model).
- ``symptoms_of`` reads a forward, loss and backward (the gradient probe's) for a
  non-finite loss or gradient (the symptom).
- ``localise`` re-runs a step that showed the symptom with everything watched: a
  ``TorchFunctionMode`` sees every torch operation (inside modules, in the spec's
  forward, in the loss) and keeps the first one that turns finite inputs into
  non-finite output, with the module that was running and the user's line; module
  hooks keep the first module whose output is non-finite while its inputs were
  finite; in backward, hooks on the autograd graph keep the first node that turns
  a finite gradient into a non-finite one, with the forward line anomaly mode
  recorded for it. PyTorch's anomaly mode alone covers backward only.

``step_then_forward`` takes one optimiser step and runs the next forward, for NaN
that appears only once the weights move. Everything runs on copies; hooks and
modes are removed in ``finally``; only plain numbers and strings come back.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import traceback
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dldoctor.probes.gradients import GradFlow
from dldoctor.runtime.tensors import all_finite, iter_tensors, l2_norms

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[^\n]+)\n\s*(?P<code>[^\n]*)')


@dataclasses.dataclass(frozen=True)
class DataNonFinite:
    """Non-finite values in one tensor of a batch (``role``: inputs, targets or tensor k)."""

    role: str
    shape: tuple[int, ...]
    nan: int
    inf: int
    columns: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return self.nan + self.inf


@dataclasses.dataclass(frozen=True)
class StepSymptoms:
    """Whether one forward/loss/backward produced a non-finite loss or gradient."""

    loss_value: float | None
    nonfinite_grads: tuple[str, ...]
    error: str = ""

    @property
    def loss_finite(self) -> bool:
        return self.loss_value is None or math.isfinite(self.loss_value)

    @property
    def sick(self) -> bool:
        return not self.error and (not self.loss_finite or bool(self.nonfinite_grads))


@dataclasses.dataclass(frozen=True)
class ValueRange:
    """What one input of an operation looked like."""

    shape: tuple[int, ...]
    min: float
    max: float
    zeros: int
    negatives: int
    numel: int
    nonfinite: int = 0


@dataclasses.dataclass(frozen=True)
class Origin:
    """The first operation that produced a non-finite value from non-offending inputs.

    ``phase`` is ``forward`` (inside the model), ``spec forward`` (the spec's forward
    function, outside any module), ``loss`` or ``backward``. ``module_path`` is the
    innermost module running at that moment (None outside the model); for a
    backward origin it is the module that ran the forward operation, and
    ``created_in`` the phase that operation ran in.
    """

    phase: str
    op: str
    kind: str  # "nan", "inf" or "nan and inf"
    module_path: str | None
    module_type: str
    user_line: str
    inputs: tuple[ValueRange, ...] = ()
    scalars: tuple[str, ...] = ()
    frac_nonfinite: float = 0.0
    created_in: str = ""
    module_leaf: bool = True


@dataclasses.dataclass(frozen=True)
class Localisation:
    """What a watched step showed about where non-finite values start."""

    origin: Origin | None
    first_module: tuple[str, str] | None
    outputs_nonfinite: float
    loss_value: float | None
    nonfinite_grads: tuple[str, ...]
    error: str = ""


# -- helpers --------------------------------------------------------------------------
def _floats(obj: Any) -> list[torch.Tensor]:
    return [t for t in iter_tensors(obj) if t.is_floating_point()]


def _finite(ts: Iterable[torch.Tensor]) -> bool:
    return all(all_finite(t) for t in ts)


def _has_nan(ts: Iterable[torch.Tensor]) -> bool:
    return any(bool(torch.isnan(t).any()) for t in ts)


def _scalars(obj: Any) -> Iterable[Any]:
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _scalars(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _scalars(item)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def value_range(t: torch.Tensor) -> ValueRange:
    with torch.no_grad():
        x = t.detach().float()
        finite = x[torch.isfinite(x)]
        lo = float(finite.min()) if finite.numel() else float("nan")
        hi = float(finite.max()) if finite.numel() else float("nan")
        return ValueRange(tuple(t.shape), lo, hi, int((x == 0).sum()), int((x < 0).sum()), x.numel(),
                          x.numel() - finite.numel())


def _is_user_file(filename: str, roots: tuple[str, ...]) -> bool:
    if filename.startswith("<"):
        return False
    real = os.path.realpath(filename)
    if real.startswith(_PACKAGE_DIR) or "site-packages" in real or "dist-packages" in real:
        return False
    return real.startswith(roots) if roots else True


def _frame_text(file: str, line: int | str | None, func: str, code: str) -> str:
    code = code.strip()
    return f"{Path(file).name}:{line} in {func.strip()}" + (f": `{code}`" if code else "")


def user_line_from_stack(frames: list[traceback.FrameSummary], roots: tuple[str, ...]) -> str:
    """``file:line in func: `code``` of the innermost user frame, or ""."""
    mine = [f for f in frames if _is_user_file(f.filename, roots)]
    if not mine:
        return ""
    f = mine[-1]
    return _frame_text(f.filename, f.lineno, f.name, f.line or "")


def user_line_from_anomaly(lines: Any, roots: tuple[str, ...]) -> str:
    """The innermost user frame of an autograd node's forward traceback (anomaly mode)."""
    text = "".join(lines) if isinstance(lines, (list, tuple)) else str(lines or "")
    found = [m for m in _FRAME.finditer(text) if _is_user_file(m.group("file"), roots)]
    if not found:
        return ""
    m = found[-1]
    return _frame_text(m.group("file"), m.group("line"), m.group("func"), m.group("code"))


def op_name(func: Any) -> str:
    """A readable name: ``torch.log``, ``Tensor.__truediv__``, ``F.softmax``."""
    name = getattr(func, "__name__", None) or str(func)
    qual = getattr(func, "__qualname__", "") or ""
    module = getattr(func, "__module__", "") or ""
    if "Tensor" in qual:
        return f"Tensor.{name}"
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return f"F.{name}"
    return f"torch.{name}"


_INPLACE_DUNDERS = {"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__", "__idiv__"}


def _is_inplace(name: str) -> bool:
    return name in _INPLACE_DUNDERS or (name.endswith("_") and not name.endswith("__"))


# -- measurements ---------------------------------------------------------------------
def scan_batch(batch: Any, split_inputs: Callable[[Any], tuple[Any, Any]] | None) -> tuple[DataNonFinite, ...]:
    """Non-finite values in the floating tensors of a batch, named inputs/targets when possible."""
    parts: list[tuple[str, torch.Tensor]] = []
    if split_inputs is not None:
        try:
            inputs, targets = split_inputs(batch)
            parts = [("inputs", t) for t in iter_tensors(inputs)] + [("targets", t) for t in iter_tensors(targets)]
        except Exception:
            parts = []
    if not parts:
        parts = [(f"batch tensor {i}", t) for i, t in enumerate(iter_tensors(batch))]
    found = []
    with torch.no_grad():
        for role, t in parts:
            if not t.is_floating_point():
                continue
            nan = int(torch.isnan(t).sum())
            inf = int(torch.isinf(t).sum())
            if nan or inf:
                columns: tuple[int, ...] = ()
                if t.dim() == 2:
                    bad = (~torch.isfinite(t)).any(dim=0).nonzero().flatten().tolist()
                    columns = tuple(int(c) for c in bad)
                found.append(DataNonFinite(role, tuple(t.shape), nan, inf, columns))
    return tuple(found)


def _nonfinite_grads(model: nn.Module) -> tuple[str, ...]:
    out = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = p.grad
            if g is None:
                continue
            values = g.coalesce().values() if g.is_sparse else g
            if not all_finite(values):
                out.append(name)
    return tuple(out)


def symptoms_of(flow: GradFlow) -> StepSymptoms:
    """Whether a watched forward/loss/backward (:func:`measure_grad_flow`, shared with
    the gradient-flow check) gave a non-finite loss or gradient."""
    if flow.loss_value is None or flow.crashed:
        return StepSymptoms(None, (), flow.error or "the loss is not one number")
    return StepSymptoms(flow.loss_value, tuple(p.name for p in flow.params if p.grad_nonfinite))


class _State:
    def __init__(self, model: nn.Module, roots: tuple[str, ...]):
        self.paths = {m: n for n, m in reversed(list(model.named_modules(remove_duplicate=False)))}
        self.roots = roots
        self.stack: list[tuple[nn.Module, bool]] = []
        self.phase = "forward"
        self.busy = False
        self.origin: Origin | None = None
        self.first_module: tuple[str, str] | None = None
        self.nodes: dict[Any, tuple[str, str | None, str, str]] = {}

    def where(self) -> tuple[str | None, str]:
        if not self.stack:
            return None, ""
        module = self.stack[-1][0]
        return self.paths.get(module, "?"), type(module).__name__

    def is_leaf(self) -> bool:
        return not self.stack or not any(True for _ in self.stack[-1][0].children())

    def phase_here(self, path: str | None) -> str:
        return "spec forward" if path is None and self.phase == "forward" else self.phase


class _OriginMode(TorchFunctionMode):
    """Keeps the first torch operation that makes a non-finite value out of finite inputs.

    An Inf counts only when every tensor input was finite and no scalar argument was
    itself infinite (``masked_fill(mask, float('-inf'))`` is deliberate); a NaN
    counts when no input held a NaN (softmax over a row of -inf does). Operations
    without tensor inputs (factories, ``empty``) are skipped.
    """

    def __init__(self, state: _State):
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        st = self.state
        if st.busy:
            return func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        watch = st.origin is None and "empty" not in name
        ins = _floats((args, kwargs)) if watch else []
        if watch and ins:
            in_nan = _has_nan(ins)
            in_finite = not in_nan and _finite(ins)
            scalar_bad = any(isinstance(v, float) and not math.isfinite(v) for v in _scalars((args, kwargs)))
            before = tuple(value_range(t) for t in ins[:3]) if _is_inplace(name) else None
        out = func(*args, **kwargs)
        outs = _floats(out if out is not None else args[:1])
        if watch and ins and outs:
            out_nan = _has_nan(outs)
            out_inf = any(bool(torch.isinf(t).any()) for t in outs)
            if (out_nan and not in_nan) or (out_inf and in_finite and not scalar_bad):
                path, kind = st.where()
                phase = st.phase_here(path)
                n = sum(t.numel() for t in outs)
                bad = sum(int((~torch.isfinite(t)).sum()) for t in outs)
                st.origin = Origin(
                    phase=phase, op=op_name(func),
                    kind="nan and inf" if out_nan and out_inf else ("nan" if out_nan else "inf"),
                    module_path=path, module_type=kind,
                    user_line=user_line_from_stack(traceback.extract_stack()[:-1], st.roots),
                    inputs=before or tuple(value_range(t) for t in ins[:3]),
                    scalars=tuple(repr(v) for v in list(_scalars((args, kwargs)))[:3]),
                    frac_nonfinite=bad / max(n, 1), module_leaf=st.is_leaf(),
                )
        for t in outs:
            if t.grad_fn is not None:
                path, kind = st.where()
                st.nodes.setdefault(t.grad_fn, (op_name(func), path, kind, st.phase_here(path)))
        return out


def _module_hooks(model: nn.Module, st: _State) -> list[Any]:
    def pre(module, args, kwargs):
        st.busy = True
        try:
            st.stack.append((module, _finite(_floats((args, kwargs)))))
        finally:
            st.busy = False

    def post(module, args, kwargs, output):
        in_finite = True
        if st.stack and st.stack[-1][0] is module:
            in_finite = st.stack.pop()[1]
        st.busy = True
        try:
            if st.first_module is None and in_finite and not _finite(_floats(output)):
                st.first_module = (st.paths.get(module, "?"), type(module).__name__)
        finally:
            st.busy = False

    handles = []
    for module in st.paths:
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    return handles


def _graph_hooks(loss: torch.Tensor, st: _State) -> list[Any]:
    """Hooks on every autograd node: keep the first that turns finite gradients non-finite."""
    handles = []
    seen: set[Any] = set()
    todo = [loss.grad_fn]

    def make(node):
        def hook(grad_inputs, grad_outputs):
            if st.origin is not None:
                return
            produced = [g for g in grad_inputs if isinstance(g, torch.Tensor) and g.is_floating_point()]
            received = [g for g in grad_outputs if isinstance(g, torch.Tensor) and g.is_floating_point()]
            if produced and not _finite(produced) and _finite(received):
                op, path, kind, phase = st.nodes.get(node, ("", None, "", ""))
                lines = getattr(node, "metadata", {}).get("traceback_", "")
                st.origin = Origin(
                    phase="backward", op=f"{node.name()}" + (f" (of {op})" if op else ""),
                    kind="nan" if _has_nan(produced) else "inf",
                    module_path=path, module_type=kind,
                    user_line=user_line_from_anomaly(lines, st.roots),
                    inputs=tuple(value_range(g) for g in received[:1]), created_in=phase,
                )
        return hook

    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if not type(node).__name__.endswith("AccumulateGrad"):
            handles.append(node.register_hook(make(node)))
        todo.extend(n for n, _ in node.next_functions)
    return handles


def localise(model: nn.Module, batch: Any, forward: Callable, loss_fn: Callable,
             roots: Iterable[Path] = ()) -> Localisation:
    """Re-run one step with every operation, module and autograd node watched."""
    model.train()
    st = _State(model, tuple(str(Path(r).resolve()) for r in roots))
    handles = _module_hooks(model, st)
    outputs_nonfinite = 0.0
    loss_value = None
    error = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.autograd.detect_anomaly(check_nan=False):
                with _OriginMode(st):
                    outputs, targets = forward(model, batch)
                    st.phase = "loss"
                    outs = _floats(outputs)
                    if outs:
                        total = sum(t.numel() for t in outs)
                        outputs_nonfinite = sum(int((~torch.isfinite(t)).sum()) for t in outs) / max(total, 1)
                    loss = loss_fn(outputs, targets)
                loss_value = float(loss.detach().float().item())
                if loss.requires_grad:
                    handles += _graph_hooks(loss, st)
                    loss.backward()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for handle in handles:
            handle.remove()
    return Localisation(st.origin, st.first_module, outputs_nonfinite, loss_value, _nonfinite_grads(model), error)


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """One optimiser step on a clean batch, then the next forward.

    ``update_ratio`` is |weights after - weights before| / |weights before| over all
    parameters (inf when the step made a weight non-finite).
    """

    lr_scale: float
    loss_after: float | None
    params_nonfinite: int
    update_ratio: float = 0.0
    error: str = ""
    first: StepSymptoms | None = None
    """The stepped batch's own loss and gradients, at the initial weights (before clipping)."""

    @property
    def sick(self) -> bool:
        return not self.error and (self.params_nonfinite > 0 or
                                   (self.loss_after is not None and not math.isfinite(self.loss_after)))


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Any, forward: Callable, loss_fn: Callable,
          clip: float | None, lr_scale: float, seen: list[StepSymptoms] | None = None) -> None:
    """One optimiser step on ``batch``; the first pass's symptoms are appended to ``seen``."""
    model.train()
    for group in optimizer.param_groups:
        if "lr" in group:
            group["lr"] = group["lr"] * lr_scale

    def closure():
        optimizer.zero_grad()
        outputs, targets = forward(model, batch)
        loss = loss_fn(outputs, targets)
        loss.backward()
        if seen is not None and not seen:  # an optimiser may call the closure again (LBFGS)
            seen.append(StepSymptoms(float(loss.detach().float().item()), _nonfinite_grads(model)))
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        return loss

    optimizer.step(closure)
    optimizer.zero_grad()


def step_then_forward(model: nn.Module, optimizer: torch.optim.Optimizer, first: Any, second: Any,
                      forward: Callable, loss_fn: Callable, clip: float | None, lr_scale: float) -> StepOutcome:
    """One step on ``first`` (learning rate scaled by ``lr_scale``), then forward and loss on ``second``.

    The step's first forward/backward is also ``first``'s symptom check at the
    initial weights (``StepOutcome.first``), so a caller need not run it again.
    """
    seen: list[StepSymptoms] = []
    try:
        params = list(model.parameters())
        before = [p.detach().clone() for p in params]
        _step(model, optimizer, first, forward, loss_fn, clip, lr_scale, seen)
        bad = sum(1 for p in params if not all_finite(p.detach()))
        with torch.no_grad():
            moved = sum(n ** 2 for n in l2_norms([p.detach().float() - b.float() for p, b in zip(params, before)]))
            size = sum(n ** 2 for n in l2_norms(before))
            ratio = math.sqrt(moved / size) if size > 0 else (math.inf if moved > 0 else 0.0)
            outputs, targets = forward(model, second)
            after = float(loss_fn(outputs, targets).detach().float().item())
    except Exception as exc:
        return StepOutcome(lr_scale, None, 0, 0.0, f"{type(exc).__name__}: {exc}", seen[0] if seen else None)
    return StepOutcome(lr_scale, after, bad, ratio if math.isfinite(ratio) else math.inf,
                       first=seen[0] if seen else None)


def step_then_localise(model: nn.Module, optimizer: torch.optim.Optimizer, first: Any, second: Any,
                       forward: Callable, loss_fn: Callable, clip: float | None, lr_scale: float,
                       roots: Iterable[Path] = ()) -> Localisation:
    """As ``step_then_forward``, then ``localise`` the step on ``second``."""
    try:
        _step(model, optimizer, first, forward, loss_fn, clip, lr_scale)
    except Exception as exc:
        return Localisation(None, None, 0.0, None, (), f"{type(exc).__name__}: {exc}")
    return localise(model, second, forward, loss_fn, roots)
