"""The memory model of a training step: what it holds, and how that grows with the batch.

A training step holds, above the parameters and buffers that are live all along:

* the optimiser state (Adam: two buffers per parameter, SGD with momentum: one,
  plain SGD: none), live from the first ``optimizer.step()`` on;
* during forward and backward: the input batch, the activations autograd saves
  for backward, the gradients (allocated as backward reaches each parameter) and
  short-lived temporaries;
* during ``optimizer.step()``: the gradients and the step's own temporaries, while
  the batch and the model's outputs are still live.

Nothing here is guessed from layer types. Two things are measured on a copy of the
model, at two batch sizes (the spec's batch and half of it):

* the **peak of live tensor bytes**: on CUDA the caching allocator's own peak
  (``max_memory_allocated``); elsewhere a dispatch mode that sees every tensor
  operation, counts each newly allocated storage once (outputs that alias an input,
  such as views and in-place results, allocate nothing) and subtracts it again when
  the storage is freed (a weak-reference finalizer);
* the **activations saved for backward**, through autograd's saved-tensor hooks,
  each storage once, leaving out parameters, buffers and the input batch (counted
  on their own), and attributed to the innermost module running when it was saved.

The peak of a steady-state step (any step after the first, when the optimiser
state exists) is then::

    peak(N) = params + max(opt_state + pass_fixed + pass_per_sample * N,
                           optimizer_step + held_per_sample * N)

where the forward/backward part is linear in the batch size N, fitted through the
two measured sizes (on CUDA, after one unmeasured pass that absorbs one-time
allocations such as the cuBLAS workspace; the slope is the allocator's, which also
grows with kernel workspaces, but never less than the tensor count's). The optimiser state is measured
by one real ``optimizer.step()`` on the copy, summing the state tensors. On CUDA, :func:`find_max_batch` confirms the
prediction with real training steps (in the spirit of Lightning's batch-size
finder, but starting from the prediction). No tensor leaves this module; every hook
is removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dldoctor.core.errors import CheckIncomplete
from dldoctor.probes.forward_trace import display_path, is_out_of_memory
from dldoctor.runtime.tensors import batch_size_of, iter_tensors

Forward = Callable[[nn.Module, Any], tuple[Any, Any]]

#: Owner of tensors saved while no module of the model runs (the loss, the spec's forward).
OUTSIDE = "<outside>"


# -- results ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LayerBytes:
    """A module and a byte count (its own parameters, or its saved activations per sample)."""

    path: str
    type_name: str
    nbytes: float

    @property
    def label(self) -> str:
        return f"{self.path} ({self.type_name})"


@dataclasses.dataclass(frozen=True)
class MemoryModel:
    """Bytes of a training step as a function of the batch size, from two measured sizes.

    Attributes:
        device: where it was measured.
        batch_size: the spec's batch size (the first training batch).
        measured_sizes: the batch sizes the passes ran at.
        param_bytes: parameters and buffers, each storage once.
        grad_bytes: the gradients after backward.
        optimizer_name: the optimiser's class name.
        optimizer_state_bytes: the optimiser's state tensors after one real step.
        optimizer_state_measured: False when ``optimizer.step()`` could not run alone
            (e.g. LBFGS needs a closure); the state then counts as 0.
        input_bytes_per_sample: the input batch (every tensor of it) per sample.
        saved_bytes: activations saved for backward at each measured size.
        saved_bytes_per_sample: their growth per sample.
        pass_fixed_bytes: intercept of the forward/backward peak (gradients and
            temporaries that do not grow with the batch).
        pass_bytes_per_sample: growth of the forward/backward peak per sample (input,
            saved activations, their gradients, temporaries).
        optimizer_step_bytes: gradients plus the peak of the optimiser step (state
            allocated on the first step included) and of gradient clipping.
        held_bytes_per_sample: what stays live through the optimiser step and grows
            with the batch: the input batch and the model's outputs.
        largest_layer: the module with the most parameter bytes of its own.
        largest_activation: the module saving the most activation bytes per sample.
        tracked: True when the peaks were measured (the CUDA allocator's peak, or the
            live-bytes count elsewhere); False when the dispatch mode could not run
            and the peak was assembled from the components.
    """

    device: str
    batch_size: int
    measured_sizes: tuple[int, ...]
    param_bytes: int
    grad_bytes: int
    optimizer_name: str
    optimizer_state_bytes: int
    optimizer_state_measured: bool
    input_bytes_per_sample: float
    saved_bytes: tuple[int, ...]
    saved_bytes_per_sample: float
    pass_fixed_bytes: float
    pass_bytes_per_sample: float
    optimizer_step_bytes: int
    held_bytes_per_sample: float
    largest_layer: LayerBytes | None
    largest_activation: LayerBytes | None
    tracked: bool = True

    def pass_bytes(self, n: int) -> float:
        """Peak of forward/backward at batch ``n``, above parameters and optimiser state."""
        return self.pass_fixed_bytes + self.pass_bytes_per_sample * n

    def optimizer_phase_bytes(self, n: int) -> float:
        """Peak of the optimiser step at batch ``n`` (the batch and outputs are still live)."""
        return self.optimizer_step_bytes + self.held_bytes_per_sample * n

    def step_bytes(self, n: int) -> float:
        """Peak of a steady-state training step at batch ``n``, above parameters and buffers."""
        return max(self.optimizer_state_bytes + self.pass_bytes(n), self.optimizer_phase_bytes(n))

    def peak_bytes(self, n: int) -> float:
        """Peak bytes of a steady-state training step at batch ``n``, parameters included."""
        return self.param_bytes + self.step_bytes(n)

    def peak_in(self, n: int) -> str:
        """Which phase holds the peak at batch ``n``: ``forward/backward`` or ``optimiser step``."""
        forward = self.optimizer_state_bytes + self.pass_bytes(n)
        return "forward/backward" if forward >= self.optimizer_phase_bytes(n) else "optimiser step"

    def max_batch(self, budget: float) -> int | None:
        """The largest batch whose peak fits ``budget`` bytes: 0 when not even one sample
        fits, None when the step's memory does not grow with the batch."""
        if self.peak_bytes(1) > budget:
            return 0
        limits = []
        if self.pass_bytes_per_sample > 0:
            room = budget - self.param_bytes - self.optimizer_state_bytes - self.pass_fixed_bytes
            limits.append(room / self.pass_bytes_per_sample)
        if self.held_bytes_per_sample > 0:
            room = budget - self.param_bytes - self.optimizer_step_bytes
            limits.append(room / self.held_bytes_per_sample)
        if not limits:
            return None
        return max(1, int(math.floor(min(limits))))


@dataclasses.dataclass(frozen=True)
class RealProbe:
    """What real training steps at growing batch sizes found (CUDA only).

    Attributes:
        start: the batch size the search started from (the model's prediction).
        largest_fit: the largest batch that ran a full training step (0: none did).
        smallest_fail: the smallest batch that ran out of memory (None: none did).
        trials: (batch size, it fit) in the order tried.
        stopped: why the search ended (``converged``, ``cap``, ``trials``, ``time``,
            or the error that was not an out-of-memory).
    """

    start: int
    largest_fit: int
    smallest_fail: int | None
    trials: tuple[tuple[int, bool], ...]
    stopped: str


class OneSampleDoesNotFit(Exception):
    """Even the smallest batch ran out of memory while measuring."""

    def __init__(self, size: int, param_bytes: int, largest_layer: LayerBytes | None):
        super().__init__(f"batch {size} ran out of memory")
        self.size = size
        self.param_bytes = param_bytes
        self.largest_layer = largest_layer


# -- counting bytes --------------------------------------------------------------------
def _storage(t: torch.Tensor):
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):  # sparse, nested, some subclasses
        return None


def _storage_ptrs(obj: Any) -> set[int]:
    ptrs = set()
    for t in tree_leaves(obj):
        if isinstance(t, torch.Tensor):
            st = _storage(t)
            if st is not None:
                ptrs.add(st.data_ptr())
    return ptrs


def unique_bytes(tensors) -> int:
    """Bytes of the storages behind ``tensors``, each storage once."""
    seen: dict[int, int] = {}
    for t in tensors:
        st = _storage(t) if isinstance(t, torch.Tensor) else None
        if st is not None and st.data_ptr():
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages allocated while active, until each is freed.

    Every operation's outputs are inspected: a storage that is not one of the
    operation's inputs' storages (views, in-place results and ``out=`` arguments
    share one) is new; it is counted once, and a finalizer on the storage subtracts
    it when autograd or Python frees it. ``peak`` is the high-water mark of ``live``.
    Allocations made inside a kernel and released before it returns (workspaces) are
    not seen.
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable, which imports
        # dynamo (about 2 s) on first use. Without torch.compile in the process there is
        # nothing to disable; with it (dynamo already imported), keep torch's default.
        return "torch._dynamo" in sys.modules

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}
        self._finalizers: list[weakref.finalize] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs: set[int] | None = None
        # Most operations return one tensor: skip the pytree walk for them.
        for t in ((out,) if isinstance(out, torch.Tensor) else tree_leaves(out)):
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            st = _storage(t)
            if st is None:
                continue
            nbytes = st.nbytes()
            if nbytes == 0:
                continue
            if inputs is None:
                inputs = _storage_ptrs((args, kwargs))
            key = st._cdata
            if st.data_ptr() in inputs or key in self._sizes:
                continue
            self._sizes[key] = nbytes
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            self._finalizers.append(weakref.finalize(st, self._freed, key))
        return out

    def _freed(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def close(self) -> None:
        """Drop the finalizers of storages still alive (nothing is counted afterwards)."""
        for fin in self._finalizers:
            fin.detach()
        self._finalizers.clear()
        self._sizes.clear()


class CudaPeak:
    """The CUDA caching allocator's own count: the peak of allocated bytes above the start.

    On CUDA this is what runs out, so it is preferred to the tensor count: it includes
    kernel workspaces (cuDNN, cuBLAS) and the allocator's rounding of block sizes.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self._start = 0

    def __enter__(self) -> CudaPeak:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self._start = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc_info: object) -> None:
        torch.cuda.synchronize(self.device)
        self.peak = torch.cuda.max_memory_allocated(self.device) - self._start

    def close(self) -> None:
        pass


def _meter(device: torch.device, track: bool):
    """The peak counter for ``device``: the allocator's on CUDA, the tensor count elsewhere."""
    if not track:
        return None
    return CudaPeak(device) if device.type == "cuda" else LiveBytes()


class _SavedLog:
    """Saved-tensor hooks that sum what autograd keeps for backward, each storage once."""

    def __init__(self, skip: set[int], stack: list[str]):
        self.skip = skip
        self.stack = stack
        self.seen: set[int] = set()
        self.total = 0
        self.by_module: dict[str, int] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        st = _storage(t)
        if st is not None:
            ptr = st.data_ptr()
            if ptr and ptr not in self.skip and ptr not in self.seen:
                self.seen.add(ptr)
                nbytes = st.nbytes()
                self.total += nbytes
                owner = self.stack[-1] if self.stack else OUTSIDE
                self.by_module[owner] = self.by_module.get(owner, 0) + nbytes
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t


class _ModuleStack:
    """Forward hooks that keep the path of the module running innermost."""

    def __init__(self, model: nn.Module):
        self.stack: list[str] = []
        self.types: dict[str, str] = {}
        self.handles = []
        for name, module in model.named_modules():
            self.types[name] = type(module).__name__
            self.handles.append(module.register_forward_pre_hook(lambda m, a, name=name: self.stack.append(name)))
            self.handles.append(module.register_forward_hook(lambda m, a, o: self._pop()))

    def _pop(self) -> None:
        if self.stack:
            self.stack.pop()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


# -- batches of another size -----------------------------------------------------------
def resize_batch(batch: Any, batch_size: int, n: int) -> Any:
    """A copy of ``batch`` with ``n`` samples: every tensor whose first dimension is the
    batch size is cut (or, for ``n`` larger, repeated) along it and made contiguous."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0 or batch.shape[0] != batch_size:
            return batch
        if n <= batch_size:
            return batch[:n].clone()
        reps = -(-n // batch_size)
        return batch.repeat((reps,) + (1,) * (batch.dim() - 1))[:n].contiguous()
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(resize_batch(v, batch_size, n) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(resize_batch(v, batch_size, n) for v in batch)
    if isinstance(batch, dict):
        return {k: resize_batch(v, batch_size, n) for k, v in batch.items()}
    return batch


def _batch_bytes(batch: Any) -> int:
    return sum(t.numel() * t.element_size() for t in iter_tensors(batch))


# -- one forward/backward, one optimiser step ------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Pass:
    size: int
    input_bytes: int
    output_bytes: int
    peak: int  # forward/backward peak above what was live before, input excluded (-1: not measured)
    saved: int
    saved_by_module: dict[str, int]
    counted_peak: int | None = None  # the tensor count's peak, when the allocator's is the peak


def _forward_backward(model: nn.Module, batch: Any, size: int, forward: Forward, loss_fn, skip: set[int],
                      count: bool, device: torch.device) -> _Pass:
    """Forward, loss and backward, as a user's loop runs them (outputs kept until the
    step ends), measuring the peak and the activations saved for backward.

    On CUDA the allocator's peak is taken, and (with ``count``) the tensor count too;
    elsewhere the tensor count only (without ``count``, no peak: -1).
    """
    modules = _ModuleStack(model)
    saved = _SavedLog(skip | _storage_ptrs(batch), modules.stack)
    allocator = CudaPeak(device) if device.type == "cuda" else contextlib.nullcontext()
    counter = LiveBytes() if count else contextlib.nullcontext()
    try:
        with saved_tensors_hooks(saved.pack, saved.unpack), allocator, counter:
            outputs, targets = forward(model, batch)
            loss = loss_fn(outputs, targets)
            loss.backward()
        output_bytes = unique_bytes(t for t in iter_tensors(outputs) if _storage(t) is not None
                                    and _storage(t).data_ptr() not in saved.skip)
        del outputs, targets, loss
    finally:
        modules.remove()
        if isinstance(counter, LiveBytes):  # (that is: if count)
            counter.close()
    counted = counter.peak if isinstance(counter, LiveBytes) else None
    if isinstance(allocator, CudaPeak):
        return _Pass(size, _batch_bytes(batch), output_bytes, allocator.peak, saved.total, dict(saved.by_module),
                     counted_peak=counted)
    return _Pass(size, _batch_bytes(batch), output_bytes, -1 if counted is None else counted, saved.total,
                 dict(saved.by_module))


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, grad_clip_norm: float | None,
                    track: bool, device: torch.device) -> tuple[int, bool]:
    """One real ``optimizer.step()`` (after clipping, as the user's loop does); returns the
    peak of new allocations during it and whether it ran."""
    meter = _meter(device, track)
    ran = True
    try:
        if meter is not None:
            meter.__enter__()
        try:
            if grad_clip_norm:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                               float(grad_clip_norm))
            optimizer.step()
        except Exception as exc:  # e.g. LBFGS needs a closure
            if is_out_of_memory(exc):
                raise
            ran = False
        finally:
            if meter is not None:
                meter.__exit__(None, None, None)
    finally:
        if meter is not None:
            meter.close()
    return (meter.peak if meter is not None else 0), ran


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the tensors in the optimiser's state, each storage once."""
    tensors: list[torch.Tensor] = []
    for state in optimizer.state.values():
        values = state.values() if isinstance(state, dict) else [state]
        tensors.extend(v for v in values if isinstance(v, torch.Tensor))
    return unique_bytes(tensors)


def _largest_layer(model: nn.Module) -> LayerBytes | None:
    best: LayerBytes | None = None
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        nbytes = unique_bytes(own)
        if best is None or nbytes > best.nbytes:
            best = LayerBytes(display_path(name), type(module).__name__, float(nbytes))
    return best


def _module_types(model: nn.Module) -> dict[str, str]:
    return {name: type(module).__name__ for name, module in model.named_modules()}


def measurement_sizes(batch_size: int, step_ran: bool) -> tuple[int, ...]:
    """The batch sizes to measure at: the spec's batch and half of it when the spec's
    step ran; 1 and 2 samples when it ran out of memory (the cheapest points; on CUDA,
    :func:`_cuda_warm_up` moves them up to the largest halving of the batch that fits)."""
    if batch_size < 2:
        return (batch_size,)
    if step_ran:
        return (batch_size // 2, batch_size)
    return (1, 2)


def _cuda_warm_up(model: nn.Module, batch: Any, batch_size: int, forward: Forward, loss_fn,
                  sizes: tuple[int, ...], step_ran: bool) -> tuple[int, ...] | None:
    """One unmeasured forward/backward on CUDA, so that one-time allocations (the cuBLAS
    workspace, cuDNN handles) are not taken for the step's memory.

    When the spec's step ran out of memory, it also finds where to measure: the batch
    is halved until a pass fits (a failed try costs little on a GPU), and the model is
    measured there and at half of it, close to the limit it must predict. Returns the
    sizes to measure at, or None when not even one sample fits.
    """
    def one_pass(n: int) -> None:  # its own frame: an exception's traceback holds nothing after
        outputs, targets = forward(model, resize_batch(batch, batch_size, n))
        loss_fn(outputs, targets).backward()

    size = sizes[0] if step_ran else max(1, batch_size // 2)
    while True:
        try:
            one_pass(size)
            fits = True
        except Exception as exc:
            if not is_out_of_memory(exc):
                return sizes  # not a memory problem: the measured passes will say what
            fits = False
        _release(model.parameters())
        if fits:
            break
        if size == 1:
            return None
        size = max(1, size // 2)
    if step_ran and size == sizes[0]:
        return sizes
    return (size // 2, size) if size >= 2 else (1,)


def measure_memory(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    forward: Forward,
    loss_fn: Callable[[Any, Any], Any],
    *,
    grad_clip_norm: float | None = None,
    step_ran: bool = True,
) -> MemoryModel | None:
    """Measure the memory model of a training step on ``model`` (a copy: it is trained).

    Costs two forward/backward passes (at half the batch and the batch; when the
    spec's step ran out of memory, at 1 and 2 samples, or on CUDA at the largest
    halving of the batch that fits and half of it) and one optimiser step; on CUDA
    one more unmeasured pass.

    Returns:
        The model, or None when the batch has no tensor with a batch dimension.

    Raises:
        OneSampleDoesNotFit: when even the smallest size runs out of memory.
    """
    batch_size = batch_size_of(batch)
    if not batch_size:
        return None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.train()
    held = [*model.parameters(), *model.buffers()]
    param_bytes = unique_bytes(held)
    skip = _storage_ptrs(held)
    largest = _largest_layer(model)
    sizes = measurement_sizes(batch_size, step_ran)
    if device.type == "cuda":
        warmed = _cuda_warm_up(model, batch, batch_size, forward, loss_fn, sizes, step_ran)
        if warmed is None:
            raise OneSampleDoesNotFit(1, param_bytes, largest)
        sizes = warmed
    count = True  # the tensor count; off if the dispatch mode cannot run with this model
    passes: list[_Pass] = []
    grad_bytes = state_bytes = step_peak = 0
    state_ran = False
    for size in sizes:
        sized = resize_batch(batch, batch_size, size)
        optimizer.zero_grad(set_to_none=True)
        try:
            try:
                result = _forward_backward(model, sized, size, forward, loss_fn, skip, count, device)
            except Exception as exc:
                if is_out_of_memory(exc) or not count:
                    raise
                # The dispatch mode itself may be what failed (a compiled or exotic
                # model): retry without it (off CUDA, the peak is then assembled from
                # the components).
                count = False
                optimizer.zero_grad(set_to_none=True)
                result = _forward_backward(model, sized, size, forward, loss_fn, skip, count, device)
        except Exception as exc:
            del sized
            if is_out_of_memory(exc):
                _release(model.parameters())
                if not passes:
                    raise OneSampleDoesNotFit(size, param_bytes, largest) from None
                break
            if size != batch_size:  # the forward cannot take another batch size: use the spec's only
                optimizer.zero_grad(set_to_none=True)
                continue
            raise
        del sized
        passes.append(result)
        if len(passes) == 1:
            grad_bytes = unique_bytes([p.grad for p in model.parameters() if p.grad is not None])
            step_peak, state_ran = _optimizer_step(model, optimizer, grad_clip_norm,
                                                   count or device.type == "cuda", device)
            state_bytes = optimizer_state_bytes(optimizer) if state_ran else 0
    if not passes:
        return None
    optimizer.zero_grad(set_to_none=True)
    return _fit(str(device), batch_size, passes, param_bytes, grad_bytes, type(optimizer).__name__, state_bytes,
                state_ran, step_peak, largest, _module_types(model), count or device.type == "cuda")


def _release(params) -> None:
    for p in params:
        p.grad = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


def _fit(device: str, batch_size: int, passes: list[_Pass], param_bytes: int, grad_bytes: int, opt_name: str,
         state_bytes: int, state_ran: bool, step_peak: int, largest: LayerBytes | None, types: dict[str, str],
         tracked: bool) -> MemoryModel:
    def whole_pass(p: _Pass) -> float:
        if tracked:
            return float(p.input_bytes + p.peak)
        # Components only: everything saved, the input, and the gradients, all live at once.
        return float(p.input_bytes + p.saved + grad_bytes)

    first, last = passes[0], passes[-1]
    input_per_sample = last.input_bytes / last.size
    if last.size > first.size:
        span = last.size - first.size
        per_sample = (whole_pass(last) - whole_pass(first)) / span
        if first.counted_peak is not None and last.counted_peak is not None:
            # On CUDA the allocator's peak also holds kernel workspaces and block
            # rounding, which grow with the batch too, so its slope is the one to
            # extrapolate; it cannot grow less than the tensors themselves, though: if it
            # does, a one-time allocation fell into the first pass, and the tensor
            # count's slope is the sounder one.
            counted = (last.counted_peak - first.counted_peak + last.input_bytes - first.input_bytes) / span
            per_sample = max(per_sample, counted)
        saved_per_sample = (last.saved - first.saved) / span
        module_growth = {k: (v - first.saved_by_module.get(k, 0)) / span for k, v in last.saved_by_module.items()}
    else:  # one sample only: everything saved counts as growing with the batch
        saved_per_sample = last.saved / last.size
        per_sample = input_per_sample + saved_per_sample
        module_growth = {k: v / last.size for k, v in last.saved_by_module.items()}
    if per_sample <= 0 and saved_per_sample > 0:
        per_sample = input_per_sample + saved_per_sample
    fixed = whole_pass(last) - per_sample * last.size
    top = max(module_growth.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    largest_activation = None
    if top is not None and top[1] > 0:
        largest_activation = (LayerBytes("loss", "outside the model", float(top[1])) if top[0] == OUTSIDE
                              else LayerBytes(display_path(top[0]), types.get(top[0], "?"), float(top[1])))
    return MemoryModel(
        device=device, batch_size=batch_size, measured_sizes=tuple(p.size for p in passes),
        param_bytes=param_bytes, grad_bytes=grad_bytes, optimizer_name=opt_name,
        optimizer_state_bytes=state_bytes, optimizer_state_measured=state_ran,
        input_bytes_per_sample=input_per_sample, saved_bytes=tuple(p.saved for p in passes),
        saved_bytes_per_sample=saved_per_sample, pass_fixed_bytes=fixed, pass_bytes_per_sample=per_sample,
        optimizer_step_bytes=grad_bytes + step_peak,
        held_bytes_per_sample=(last.input_bytes + last.output_bytes) / last.size, largest_layer=largest,
        largest_activation=largest_activation, tracked=tracked,
    )


# -- budgets ---------------------------------------------------------------------------
def available_ram() -> int | None:
    """MemAvailable from /proc/meminfo, else psutil's available memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional: not a dependency
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def auto_budget(device: torch.device) -> tuple[int, str] | None:
    """The memory a training step may use here, and where the number comes from.

    On CUDA: the device's free memory (``torch.cuda.mem_get_info``) plus what this
    process's caching allocator holds without using it (reserved - allocated), i.e.
    what new tensors can get now. Elsewhere: the available RAM.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached)), f"free memory on {device}, torch.cuda.mem_get_info"
    ram = available_ram()
    if ram is None:
        return None
    return ram, "available RAM, MemAvailable in /proc/meminfo"


# -- the real probe (CUDA) -------------------------------------------------------------
def find_max_batch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    forward: Forward,
    loss_fn: Callable[[Any, Any], Any],
    start: int,
    *,
    grad_clip_norm: float | None = None,
    max_batch: int = 65536,
    max_trials: int = 8,
    tolerance: float = 0.05,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> RealProbe:
    """Find the largest batch that runs a full training step, by trying it.

    One warm-up step at a small batch creates the optimiser state (as in every step
    after the first); then each trial runs forward, loss, backward and the optimiser
    step at a batch made by repeating the cached one. The search starts at ``start``
    (the prediction) and moves away from it in steps that double (10% of ``start``
    first) until it has a size that fits and one that does not, then bisects until
    they are within ``tolerance``. Memory is released after every trial
    (``torch.cuda.empty_cache``). Runs on ``model`` (a copy: it is trained).
    At most ``max_trials`` sizes are tried, however long they take; ``time_left`` is
    only a safety limit: reaching it raises ``CheckIncomplete``.
    """
    batch_size = batch_size_of(batch) or 1
    start = max(1, min(int(start), max_batch))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.train()
    trials: list[tuple[int, bool]] = []

    def step(n: int) -> bool:
        sized = resize_batch(batch, batch_size, n)
        optimizer.zero_grad(set_to_none=True)
        outputs, targets = forward(model, sized)
        loss = loss_fn(outputs, targets)
        loss.backward()
        del outputs, targets, loss, sized
        if grad_clip_norm:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                           float(grad_clip_norm))
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return True

    def attempt(n: int) -> bool | str:
        try:
            return step(n)
        except Exception as exc:
            if is_out_of_memory(exc):
                return False
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":  # the OOM's traceback held the step's tensors
                gc.collect()
                torch.cuda.empty_cache()

    warm = attempt(min(batch_size, 4))
    if warm is not True:
        return RealProbe(start, 0, None, (), "warm-up step failed" if warm is False else str(warm))
    lo, hi = 0, None
    n, stride = start, max(1, start // 10)
    stopped = "trials"
    last_seconds = 0.0
    for trial in range(max_trials):
        if time_left() < 3 * last_seconds + 2:
            # A safety limit, not a budget: a search cut short would report a smaller
            # "largest batch that fits" (only a lower bound) on a slower machine.
            raise CheckIncomplete(
                f"the real memory probe stopped at the check's safety limit (run.check_timeout_s) after "
                f"{trial} of at most {max_trials} batch sizes (memory_model.real_probe_max_trials); "
                f"its largest batch would depend on the machine's speed. Raise run.check_timeout_s, or "
                f"lower memory_model.real_probe_max_trials.")
        began = time.monotonic()
        ok = attempt(n)
        last_seconds = time.monotonic() - began
        if isinstance(ok, str):
            stopped = ok
            break
        trials.append((n, ok))
        if ok:
            lo = max(lo, n)
        else:
            hi = n if hi is None else min(hi, n)
        if hi is not None and lo > 0:
            if hi - lo <= max(1, int(tolerance * lo)):
                stopped = "converged"
                break
            n = (lo + hi) // 2
        elif hi is None:  # everything tried fits: grow
            if n >= max_batch:
                stopped = "cap"
                break
            n, stride = min(max_batch, n + stride), stride * 2
        else:  # nothing fits yet: shrink
            if n <= 1:
                stopped = "converged"
                break
            n, stride = max(1, n - stride), stride * 2
    return RealProbe(start, lo, hi, tuple(trials), stopped)
