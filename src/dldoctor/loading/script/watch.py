"""Watch a training script's own loop: torch's global hooks, and patches undone on exit.

Where torch has a public global hook, it is used: optimizer step pre/post hooks
(``torch.optim.optimizer.register_optimizer_step_pre_hook``) and module forward hooks
(``torch.nn.modules.module.register_module_forward_pre_hook``). Where it has none, a
method is replaced for the duration of the run and put back in ``__exit__``, whatever
happened: ``Tensor.backward``, ``Optimizer.__init__``, ``LRScheduler.step``,
``DataLoader.__iter__`` and the DataLoader iterators' ``__next__``, and the loss
functions of ``torch.nn.functional``.

Per optimizer step the watcher records what a person debugging the loop would look at
(see :class:`~dldoctor.loading.script.record.StepRecord`), and it keeps what the staged
checks need to re-run the model: the weights before the first step, the optimizer's
class and hyper-parameters, the loss function, and the batches the model was called on.
At the step budget it raises :class:`StopScript` from the step hook, before the step,
so that nothing the script does after that point runs.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dldoctor.loading.script.record import NoGradPass, OptimizerInfo, StepRecord, WatchedLoop
from dldoctor.loading.user_traceback import _is_library
from dldoctor.runtime.tensors import stored_values

#: torch.nn.functional losses watched when called outside a loss module.
FUNCTIONAL_LOSSES = ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                     "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
                     "gaussian_nll_loss", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
                     "soft_margin_loss", "multilabel_soft_margin_loss", "triplet_margin_loss")

#: Batches kept for the staged checks, at most (the first ones of the watched steps).
MAX_KEPT_BYTES = 256 * 2**20
#: While every step feeds the training loader's batches to the model as they come, the staged
#: checks use that loader itself, and only this many batches are kept (in case a later step
#: stops doing so). Each kept batch is memory the loop would have freed: hundreds of them
#: fragment malloc's heap, and reading its statistics after a step (the memory series) then
#: costs 5-6x more (86 against 16 us per read on the digits CNN after 870 steps).
KEPT_WHILE_DIRECT = 16
#: Once those are kept, one step in this many searches again where the model's inputs came from (the
#: others take the batch's sample count from the model call): a loop that stops feeding the loader's
#: batches as they come is seen within a few steps, and the search (about 270 Python operations, 15 us of
#: a 3 ms DDP step of the digits CNN) leaves the other steps.
DIRECT_EVERY = 4


class StopScript(BaseException):
    """Raised inside the user's loop at the step budget; never caught by ``except Exception``."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """When to stop the script.

    At ``min_steps`` optimizer steps once the loop has shown an epoch boundary (the
    training loader iterated again, or an evaluation pass) and taken ``after_boundary``
    steps since, so that what happens between epochs is watched; at ``max_steps`` in
    any case. ``max_backwards`` stops a loop that calls ``backward()`` but never steps.
    """

    min_steps: int = 40
    max_steps: int = 200
    after_boundary: int = 5
    max_backwards: int = 200
    #: Distributed runs: seconds a rank waits still in a collective before the watchdog calls it waiting.
    hang_s: float = 20.0


@dataclasses.dataclass(slots=True)
class LossCall:
    """A loss computed in the current step: a loss module or a ``torch.nn.functional`` loss."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    prediction: Any
    target: Any
    output: Any


@dataclasses.dataclass(slots=True)
class ModelCall:
    """An outermost module call with gradients enabled: the module, its arguments, its output."""

    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


@dataclasses.dataclass
class Kept:
    """One training batch as the model and the loss saw it (detached copies)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: Any


def _detached(value: Any, clone: bool = True) -> Any:
    """``value`` with its tensors detached, and copied unless ``clone`` is False (a batch that
    came as it is from a DataLoader, whose collation makes new tensors for every batch)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone() if clone else value.detach()
    if isinstance(value, (list, tuple)):
        items = [_detached(v, clone) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        return {k: _detached(v, clone) for k, v in value.items()}
    return value


def _batch_size(value: Any) -> int:
    """The first dimension of the first tensor with one in a batch (0 if none)."""
    if isinstance(value, (list, tuple)):  # the model's positional inputs, first: the common case
        for item in value:
            n = _batch_size(item)
            if n:
                return n
        return 0
    if isinstance(value, torch.Tensor):
        return int(value.shape[0]) if value.dim() else 0
    if isinstance(value, Mapping):
        return _batch_size(list(value.values()))
    return 0


def _tensor_ids(value: Any, depth: int = 3) -> set[int]:
    """The ids of the tensors in a batch (nested lists, tuples and mappings, a few levels deep)."""
    if isinstance(value, torch.Tensor):
        return {id(value)}
    if depth == 0:
        return set()
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return set().union(*(_tensor_ids(v, depth - 1) for v in value)) if value else set()
    return set()


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    return 0


def _grad_norms(params: list[torch.Tensor]) -> tuple[list[bool], list[torch.Tensor] | list[float]]:
    """Which parameters have a gradient, and those gradients' L2 norms, not yet read.

    One fused norm over all gradients instead of a test per tensor: this runs in every
    optimizer step of the user's loop, where per-tensor calls cost 10% of a small CNN's
    step (``benchmarks/script_cost.py``). The norms stay on the gradients' device until
    :class:`Pending` reads them, so that watching adds no host synchronisation per step
    on a GPU. A gradient counts as zero when its norm is 0, which in float32 includes
    all-entries-below-1e-23 (their squares underflow).
    """
    present = [p.grad for p in params if p.grad is not None]
    has = [p.grad is not None for p in params]
    if not present:
        return has, []
    # Gradients that carry a graph of their own (backward with create_graph=True) are read without one.
    with torch.no_grad() if any(g.requires_grad for g in present) else contextlib.nullcontext():
        try:
            return has, list(torch._foreach_norm(present))
        except (AttributeError, RuntimeError):  # no fused norm in this torch, or mixed layouts
            return has, [float(g.float().norm()) for g in present]


def _host_values(tensors: list[torch.Tensor]) -> list[float]:
    """The 0-dim tensors' values, read in one transfer where they stack (one device, one dtype)."""
    try:
        with torch.no_grad():
            return torch.stack(tensors).tolist()
    except RuntimeError:
        return [t.item() for t in tensors]


class DeviceScalars:
    """Scalars of the watched steps (losses, gradient norms), written into one buffer on their
    device and read in one transfer.

    No host synchronisation per step on a GPU, and nothing allocated per step that outlives
    it: a few 0-dim tensors kept per step until they are read would grow the memory read
    after each step by about 3.5 kB a step on the digits CNN, which the memory-leak test
    reads as a leak.
    """

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self.buffer: torch.Tensor | None = None
        self.used = 0

    def put(self, tensors: list[torch.Tensor]) -> tuple[int, int] | None:
        """Write the 0-dim tensors' values; their ``(start, count)``, or None where they do not
        fit (read first), or sit on another device than the buffer or on several devices."""
        n = len(tensors)
        if n > self.capacity:
            return None
        device = tensors[0].device
        if self.buffer is None or (self.used == 0 and self.buffer.device != device):
            self.buffer = torch.empty(self.capacity, dtype=torch.float32, device=device)
        if self.buffer.device != device or self.used + n > self.capacity:
            return None
        try:
            with torch.no_grad():
                torch.stack(tensors, out=self.buffer[self.used:self.used + n])
        except RuntimeError:  # tensors on several devices
            return None
        span = (self.used, n)
        self.used += n
        return span

    def read(self) -> list[float]:
        """Every value written since the last read, in order (one host transfer); empties the buffer."""
        values = self.buffer[:self.used].tolist() if self.buffer is not None and self.used else []
        self.used = 0
        return values


@dataclasses.dataclass
class Pending:
    """A step's values still on the device (see :class:`DeviceScalars`)."""

    step: StepRecord
    has_grad: list[bool]
    norms: tuple[int, int] | list[float] | None
    """The present gradients' norms: a span of the buffer, or the values; None: not read."""
    loss: tuple[int, int] | float | None

    def read(self, values: list[float]) -> list[float | None]:
        """Fill in the step's loss, gradient norm and non-zero count from the buffer's
        ``values``; return each parameter's gradient norm (None: no gradient; all None when
        the norms were not read)."""
        self.step.loss = values[self.loss[0]] if isinstance(self.loss, tuple) else self.loss
        if self.norms is None:
            return [None] * len(self.has_grad)
        it = iter(values[self.norms[0]:sum(self.norms)] if isinstance(self.norms, tuple) else self.norms)
        per_param = [next(it) if has else None for has in self.has_grad]
        present = [n for n in per_param if n is not None]
        self.step.grads_at_step = len(present) - present.count(0.0)  # a NaN gradient is not "no gradient"
        self.step.grad_norm = math.hypot(*present) if present else None
        return per_param


#: Steps whose values wait on the device before they are read together.
PENDING_STEPS = 32
#: The gradient norms of each optimizer's first steps are all read; after them, one step in
#: ``GRAD_EVERY``. A fused norm over every gradient is the largest part of what watching a
#: step costs (about 50 us of the digits CNN's 3.5 ms step, more with many parameter tensors).
DENSE_GRAD_STEPS = 32
GRAD_EVERY = 4
#: In a distributed run, rank 0 reads them densely over fewer steps: every rank's added time holds every
#: rank's step, and right after backward() the read costs 35-55 us of the digits CNN's 3 ms DDP step.
#: (Host values are read at the step, so a gradient that appears late is still caught at once.)
RANK_DENSE_GRAD_STEPS = 4


#: Wrappers whose forward only hands the batch to the module they wrap (and synchronises the ranks): their
#: calls are not the model's, the wrapped module's are. Lightning's is named, as lightning is not imported.
WRAPPER_NAMES = ("_LightningModuleWrapperBase",)


def _is_wrapper(module: nn.Module) -> bool:
    return isinstance(module, nn.parallel.DistributedDataParallel) or type(module).__name__ in WRAPPER_NAMES


def _all_reset(params: Iterable[torch.Tensor]) -> bool:
    """Whether every gradient is None or all zeros (a NaN is not zero).

    Gradients that are there at backward() (``zero_grad(set_to_none=False)``, accumulation) are
    tested on the first tensor, then, where it is all zeros, on the others with one fused sum of
    absolute values (a non-zero value cannot sum to zero, a NaN sums to NaN) and one read: reset
    gradients cost 9 operations instead of 4 per tensor (24 on the digits CNN: 37 -> 27 us warm).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    with torch.no_grad():
        if _any_nonzero(grads[0]):
            return False  # stale gradients show in the first tensor already: no need to read the others
        rest = grads[1:]
        try:
            return not rest or not bool(torch.stack(torch._foreach_norm(rest, 1)).ne(0).any())
        except (AttributeError, RuntimeError, NotImplementedError):  # an older torch, sparse or mixed layouts
            return not any(_any_nonzero(g) for g in rest)


def _any_nonzero(grad: torch.Tensor) -> bool:
    """Whether a gradient holds a non-zero (or NaN) value; a sparse one (``nn.Embedding(sparse=True)``) by its
    stored values."""
    return bool(stored_values(grad).ne(0).any())


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


class Watcher:
    """Records the user's loop while installed (a context manager); see the module doc."""

    def __init__(self, record: WatchedLoop, budget: Budget, roots: tuple[Path, ...],
                 step_monitor: Callable[[torch.device], Any] | None = None) -> None:
        self.record = record
        self.budget = budget
        self.roots = tuple(str(r.resolve()) for r in roots)
        self.optimizers: list[torch.optim.Optimizer] = []  # in the order they first stepped
        self.created: list[weakref.ReferenceType[torch.optim.Optimizer]] = []
        self.model: nn.Module | None = None
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.loss_calls: list[LossCall] = []
        self.model_calls: list[ModelCall] = []
        self.kept: list[Kept] = []
        self.kept_bytes = 0
        self.loss_call: LossCall | None = None
        """The loss of the first step with one (what the staged checks will use)."""
        self.loss_scale: float | None = None
        """backward's scalar divided by that loss (1: the loss itself; None: other terms too)."""
        self.output_view: tuple[int, ...] | None = None
        """How the loss's prediction comes from the model output: () for the output itself,
        (-1, *shape) for a reshape that keeps the values (a squeeze, a flatten of the batch
        and time axes); None when it could not be told."""
        self.output_key: str | int | None = None
        """Where in the model's output the loss's prediction is, when the output is a mapping or
        a tuple (a Hugging Face model's ``logits``, an RNN's ``(output, hidden)``); None: the output."""
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.loaders: dict[int, Any] = {}  # iterator id -> loader
        self.last_batch: dict[int, collections.deque[Any]] = {}  # loader id -> its last two batches
        self.source_loader: Any = None
        """The loader the training steps' inputs come from (as they come or not): its epochs
        mark the boundary. A loader may run one batch ahead (accelerate prefetches)."""
        self.loader_iters: dict[int, int] = {}  # loader id -> times iterated
        self.direct = True
        """Every kept step called the model on batch[0] of the training loader and the loss on batch[1]."""
        self._steady = False  # direct, and every batch needed kept: see _steady_step
        self.ever_grad: set[int] = set()
        self._depth = 0
        self._outer: nn.Module | None = None  # the module of the outermost call in progress
        self._in_loss = 0
        self._since_step: dict[int, int] = {}  # optimizer id -> backward calls since its last step
        self._fresh: dict[int, bool | None] = {}  # optimizer id -> reset before the first of those
        self._params: dict[int, tuple[int, list[torch.Tensor]]] = {}  # optimizer id -> (backward, its trainable)
        self._backwards_total = 0
        self._last_loss: torch.Tensor | None = None
        self._pending: list[Pending] = []
        self._scalars = DeviceScalars()
        self._boundary: int | None = None
        self._stop = budget.max_steps  # the step the script is stopped at (see _set_boundary)
        self._pass: NoGradPass | None = None
        self._handles: list[Any] = []
        self._forward_handles: list[Any] = []
        self._forward_global = True  # forward hooks on every module (False: on the model and its loss only)
        self._patches: list[tuple[Any, str, Any]] = []
        self._training_in_step: bool | None = None
        self._step_monitor = step_monitor
        self.monitor: Any = None
        """Times the loop's steps and reads memory (``probes.resources.monitor.StepMonitor``:
        given by the caller, as this layer sits below the probes)."""
        self.grad_clip_norm: float | None = None
        """The ``max_norm`` of the loop's first ``clip_grad_norm_`` call (2-norm), for the staged runs."""
        self._step_ended: float | None = None
        self._waited = 0.0  # seconds in the loaders' __next__ since the last step ended
        self._interval_clean = True  # no evaluation pass since the last step ended
        self._samples = 0
        self._kept_at: list[int] = []  # dldoctor's bytes (kept batches, the rank probe's) at each monitored step
        self.follower = False
        """A rank other than 0 of a distributed run: its record feeds the rank record alone (``rank_probe``), so
        what only rank 0's own checks read (gradient norms, batches kept for the staged checks) is not taken."""
        self.rank_probe: Any = None
        """In a distributed run, this rank's recorder (``dldoctor.distributed.rank_record.RankProbe``): fed
        each step of the first optimizer and each epoch start; None otherwise (nothing more is read)."""
        self.wrapper: nn.Module | None = None
        """The data-parallel wrapper the trained module was called through (DistributedDataParallel, or
        Lightning's wrapper of its module under a ddp strategy); None: called directly."""

    # -- install / remove ---------------------------------------------------------------------
    def __enter__(self) -> Watcher:
        from torch.nn.modules import module as module_hooks
        from torch.optim import optimizer as optimizer_hooks

        self._handles += [optimizer_hooks.register_optimizer_step_pre_hook(self._pre_step),
                          optimizer_hooks.register_optimizer_step_post_hook(self._post_step)]
        self._forward_handles = self._hook_forward(module_hooks.register_module_forward_pre_hook,
                                                   module_hooks.register_module_forward_hook)
        self._patch(torch.Tensor, "backward", self._wrap_backward)
        self._patch(torch.optim.Optimizer, "__init__", self._wrap_optimizer_init)
        self._patch(torch.optim.lr_scheduler.LRScheduler, "step", self._wrap_scheduler_step)
        self._patch(torch.utils.data.DataLoader, "__iter__", self._wrap_loader_iter)
        self._patch(torch.nn.utils, "clip_grad_norm_", self._wrap_clip)
        from torch.utils.data import dataloader

        self._patch(dataloader._BaseDataLoaderIter, "__next__", self._wrap_loader_next)
        for name in FUNCTIONAL_LOSSES:
            if hasattr(torch.nn.functional, name):
                self._patch(torch.nn.functional, name, self._wrap_functional_loss)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles + self._forward_handles:
            handle.remove()
        self._handles.clear()
        self._forward_handles.clear()
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()
        self._finish()

    def _patch(self, owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)
        self._patches.append((owner, name, original))
        setattr(owner, name, wrap(original))

    # -- where in the user's code ----------------------------------------------------------------
    def _user_line(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if not _is_library(name) and (not self.roots or str(Path(name).resolve()).startswith(self.roots)):
                return f"{Path(name).name}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return ""

    # -- forward calls ------------------------------------------------------------------------------
    def _hook_forward(self, register_pre: Callable[..., Any], register_post: Callable[..., Any]) -> list[Any]:
        """Install the forward hooks with the given registration functions (global or a module's)."""
        handles = [register_pre(self._forward_pre)]
        try:  # keyword inputs (a Hugging Face model's input_ids=...) need torch's with_kwargs
            handles.append(register_post(self._forward_post, with_kwargs=True))
        except TypeError:  # an older torch: positional inputs only
            handles.append(register_post(lambda module, args, output: self._forward_post(module, args, {}, output)))
        return handles

    def _narrow_forward_hooks(self) -> None:
        """From the second step on, hook only the trained model and the loss module.

        Global forward hooks put every module call of the user's step on torch's slower path
        (about 2% of a small CNN's step, ``benchmarks/script_cost.py``). Once the trained
        model is known and the loss is the same module object (or a functional loss) in two
        steps, nothing else's calls are read: the model's own hooks see its outermost calls,
        the loss module's see the loss. A loss module built anew in every forward (as some
        Hugging Face models do) keeps the global hooks.
        """
        if self.model is None or self.loss_call is None or len(self.record.steps) < 2:
            return
        fn, loss = self.loss_call.fn, self._step_loss()
        if loss is None or (isinstance(fn, nn.Module) and loss.fn is not fn):
            return
        for handle in self._forward_handles:
            handle.remove()
        self._forward_global = False
        self._forward_handles = self._hook_forward(self.model.register_forward_pre_hook,
                                                   self.model.register_forward_hook)
        if isinstance(fn, nn.Module):
            self._forward_handles += self._hook_forward(fn.register_forward_pre_hook, fn.register_forward_hook)

    def _forward_pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._forward_global and _is_wrapper(module):  # narrowed: on the model and the loss, never a wrapper
            return
        if self.rank_probe is not None:
            self.rank_probe.forward_began(module)
        if self._depth == 0:
            self._outer = module
        self._depth += 1
        if isinstance(module, nn.modules.loss._Loss):
            self._in_loss += 1

    def _forward_post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if self._forward_global and _is_wrapper(module):
            self.wrapper = module
            return
        if self.rank_probe is not None:
            self.rank_probe.forward_ended(module)
        self._depth = max(0, self._depth - 1)
        if isinstance(module, nn.modules.loss._Loss):
            self._in_loss = max(0, self._in_loss - 1)
            if self._in_loss == 0 and len(args) >= 2 and torch.is_grad_enabled():
                self.loss_calls.append(LossCall(module, {}, args[0], args[1], output))
            return
        # A module called inside a call of itself is the real forward of a redirection (Lightning's
        # ddp strategy calls the module with its forward patched to training_step, which calls it again).
        if self._depth != 0 and not (self._depth == 1 and module is self._outer):
            return
        if torch.is_grad_enabled() and not (module is self.model and self._from_other_loader((args, kwargs))):
            self.model_calls.append(ModelCall(module, args, dict(kwargs), output))
            if module is self.model:
                self._training_in_step = module.training if self._training_in_step is None else (
                    self._training_in_step and module.training)
        elif module is self.model:
            # An evaluation pass: under no_grad, or on another loader's batches (a validation
            # loop that forgot no_grad still evaluates).
            self._interval_clean = False
            if self._pass is None:
                self._pass = NoGradPass(after_step=len(self.record.steps))
                self.record.no_grad_passes.append(self._pass)
                if self.record.steps and self._boundary is None:
                    self._set_boundary()
            self._pass.calls += 1
            self._pass.training += int(module.training)

    def _loader(self, loader_id: int) -> Any:
        """The loader with this id among those iterated (None if it is gone)."""
        return next((ld for ld in self.loaders.values() if id(ld) == loader_id), None)

    def _from_other_loader(self, inputs: Any) -> bool:
        """Whether these inputs are a recent batch of a loader other than the training one."""
        if self.source_loader is None or len(self.last_batch) < 2:
            return False
        ids = _tensor_ids(inputs)
        for loader_id, recent in self.last_batch.items():
            if loader_id != id(self.source_loader) and any(ids & _tensor_ids(b) for b in recent):
                loader = self._loader(loader_id)
                if self.val_loader is None:
                    self.val_loader = loader
                return True
        return False

    def _wrap_functional_loss(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def loss(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            if watcher._in_loss == 0 and len(args) >= 2 and torch.is_grad_enabled():
                watcher.loss_calls.append(LossCall(original, dict(kwargs), args[0], args[1], out))
            return out

        loss.__wrapped__ = original  # type: ignore[attr-defined]
        return loss

    # -- backward ---------------------------------------------------------------------------------------
    def _wrap_backward(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            watcher._before_backward(tensor)
            return original(tensor, *args, **kwargs)

        return backward

    def _before_backward(self, tensor: torch.Tensor) -> None:
        self._backwards_total += 1
        self._pass = None
        if not self.record.backward_line:
            self.record.backward_line = self._user_line()
        if tensor.numel() == 1:
            self._last_loss = tensor.detach()
        for optimizer in self.optimizers:
            # Reset at any backward() since the optimizer's last step counts: with several
            # optimizers (a GAN), another one's backward() may come first, before this one's
            # zero_grad(), and does not touch its gradients.
            key = id(optimizer)
            if not self._fresh.get(key):
                params = _trainable(optimizer)
                self._params[key] = (self._backwards_total, params)  # a step right after this backward reuses it
                self._fresh[key] = _all_reset(params)
            self._since_step[key] = self._since_step.get(key, 0) + 1
        if self.loss_call is None:
            self._relate_loss(tensor)
        if self._backwards_total >= self.budget.max_backwards and not self.record.steps:
            self.record.stopped = "budget"
            raise StopScript

    def _relate_loss(self, tensor: torch.Tensor) -> None:
        """Find the loss call behind the scalar given to backward(), and how it is scaled."""
        for call in reversed(self.loss_calls):
            out = call.output
            if not isinstance(out, torch.Tensor) or out.numel() != 1:
                continue
            if out is tensor:
                self.loss_call, self.loss_scale = call, 1.0
                return
            node = tensor.grad_fn
            scaled = (node is not None and type(node).__name__ in ("NegBackward0", "MulBackward0", "DivBackward0")
                      and any(n is out.grad_fn for n, _ in node.next_functions))
            value = float(out.detach()) if scaled else 0.0
            if value != 0 and math.isfinite(value):
                self.loss_call, self.loss_scale = call, float(tensor.detach()) / value
                return
        if self.loss_calls:
            self.loss_call, self.loss_scale = self.loss_calls[-1], None
            self.record.notes.append("the scalar given to backward() is not one loss function's value (other "
                                     "terms, or a loss computed by hand): dldoctor's own runs use "
                                     f"{self._loss_name(self.loss_calls[-1])} alone")

    @staticmethod
    def _loss_name(call: LossCall) -> str:
        fn = call.fn
        return type(fn).__name__ if isinstance(fn, nn.Module) else f"F.{getattr(fn, '__name__', 'loss')}"

    # -- optimizers and schedulers ------------------------------------------------------------------
    def _wrap_optimizer_init(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def __init__(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
            original(optimizer, *args, **kwargs)
            watcher.created.append(weakref.ref(optimizer))

        return __init__

    def _wrap_clip(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def clip_grad_norm_(parameters: Any, max_norm: float, *args: Any, **kwargs: Any) -> Any:
            norm_type = args[0] if args else kwargs.get("norm_type", 2.0)
            if watcher.grad_clip_norm is None and float(norm_type) == 2.0 and float(max_norm) > 0:
                watcher.grad_clip_norm = float(max_norm)
            return original(parameters, max_norm, *args, **kwargs)

        return clip_grad_norm_

    def _wrap_scheduler_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def step(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
            # Schedulers step once in their constructor: only the calls after the first optimizer step count.
            if watcher.record.steps:
                watcher.record.scheduler_steps.append(len(watcher.record.steps))
                watcher.record.scheduler_name = watcher.record.scheduler_name or type(scheduler).__name__
            return original(scheduler, *args, **kwargs)

        return step

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if len(self.record.steps) >= self._stop:
            self.record.stopped = "budget"
            raise StopScript
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        if not callable(closure):
            self._record_step(optimizer)
            return None
        # step(closure) (Lightning, LBFGS): the forward and backward run inside step(), in the
        # closure. The step is recorded when the closure first returns: the gradients are there
        # and the weights not yet updated (the hook may hand step() other arguments).
        recorded = False

        def watched_closure(*a: Any, **k: Any) -> Any:
            nonlocal recorded
            out = closure(*a, **k)
            if not recorded:
                recorded = True
                self._record_step(optimizer)
            return out

        if len(args) > 1:
            return (args[0], watched_closure, *args[2:]), kwargs
        return args, {**kwargs, "closure": watched_closure}

    def _record_step(self, optimizer: torch.optim.Optimizer) -> None:
        key, optimizers, record = id(optimizer), self.optimizers, self.record
        if not optimizers or (optimizer is not optimizers[0] and all(o is not optimizer for o in optimizers)):
            optimizers.append(optimizer)
            record.optimizers.append(OptimizerInfo(
                type(optimizer).__name__, type(optimizer).__module__, dict(optimizer.defaults),
                [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
                len(_trainable(optimizer))))
            if len(optimizers) == 1:
                self._choose_model(optimizer)
        index = 0 if optimizer is optimizers[0] else optimizers.index(optimizer)
        if not record.step_line:
            record.step_line = self._user_line()
        cached = self._params.pop(key, None)
        params = cached[1] if cached is not None and cached[0] == self._backwards_total else _trainable(optimizer)
        has_grad, norms = self._read_grads(params, index)
        info, steps = record.optimizers[index], record.steps
        if index == 0:
            self._keep_batch()
            if self.rank_probe is not None:
                starts = record.epoch_starts
                self.rank_probe.on_step(self.model, self.model_calls, info.steps, params,
                                        position=len(steps) - (starts[-1] if starts else 0))
        groups = optimizer.param_groups
        step = StepRecord(
            index=len(steps), optimizer=index, backwards=self._since_step.get(key, 0),
            fresh=self._fresh.pop(key, None), grads_at_step=None, held=len(params), loss=None,
            training=self._training_in_step if index == 0 else None,
            lr=(float(groups[0].get("lr", math.nan)),) if len(groups) == 1
            else tuple(float(g.get("lr", math.nan)) for g in groups), grad_norm=None)
        steps.append(step)
        loss = self._last_loss
        if norms is None and loss is not None and loss.is_cpu:
            step.loss = float(loss)  # the common step on the host: its loss alone, nothing else to read
        else:
            pending = self._put(step, has_grad, norms)
            if isinstance(pending.loss, tuple) or isinstance(pending.norms, tuple):
                self._pending.append(pending)  # values on the device, read with later steps' in one transfer
                if len(self._pending) >= PENDING_STEPS:
                    self._read_pending()
            else:
                self._settle(pending, [])  # read already (on the host): ``ever_grad`` is up to date at once
        info.steps += 1
        self._since_step[key] = 0

    def _put(self, step: StepRecord, has_grad: list[bool], norms: list[Any] | None) -> Pending:
        """The step's loss and gradient norms into the device buffer in one write (their values
        read now where they cannot go there), as a :class:`Pending` step."""
        loss = [self._last_loss] if self._last_loss is not None else []
        on_device = norms if norms and isinstance(norms[0], torch.Tensor) else []
        tensors = loss + on_device
        if not tensors:
            return Pending(step, has_grad, norms, None)
        if tensors[0].device.type == "cpu":
            # On the host a read costs no synchronisation: each value now (a stack of them would be
            # two more operations, and their dispatch is most of what reading costs here).
            values = [float(t) for t in tensors]
        else:
            tensors = [t.reshape(()) for t in tensors]
            if self._scalars.used + len(tensors) > self._scalars.capacity:
                self._read_pending()  # full: read what is there first
            span = self._scalars.put(tensors)
            if span is not None:
                start, _ = span
                return Pending(step, has_grad, (start + len(loss), len(on_device)) if on_device else norms,
                               (start, 1) if loss else None)
            values = _host_values(tensors)  # too many, or on several devices: read now
        return Pending(step, has_grad, values[len(loss):] if on_device else norms, values[0] if loss else None)

    def _post_step(self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if optimizer is self.optimizers[0]:
            self._time_step()
            if self._forward_global:
                self._narrow_forward_hooks()
            self.model_calls.clear()
            self.loss_calls.clear()
            self._training_in_step = None
            self._depth = 0

    def _time_step(self) -> None:
        """Give the monitor the interval since the previous step ended (see ``WatchedLoop.resources``)."""
        now = time.perf_counter()
        if self._step_ended is not None and self._interval_clean and self.monitor is not None:
            elapsed = now - self._step_ended
            self.monitor.step(min(self._waited, elapsed), max(elapsed - self._waited, 0.0), self._samples)
            self._kept_at.append(self.kept_bytes + (self.rank_probe.held_bytes if self.rank_probe is not None else 0))
            self.record.monitored_steps.append(len(self.record.steps) - 1)
        elif self.monitor is None and self.model is not None and self._step_monitor is not None:
            device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
            self.monitor = self._step_monitor(device)
        self._step_ended = time.perf_counter()
        self._waited, self._interval_clean = 0.0, True

    def _set_boundary(self) -> None:
        """The loop's first epoch boundary is here (the training loader iterated again, or an evaluation pass):
        the script is stopped ``after_boundary`` steps later, within the budget's bounds."""
        b = self.budget
        self._boundary = len(self.record.steps)
        self._stop = min(b.max_steps, max(b.min_steps, self._boundary + b.after_boundary))

    def _choose_model(self, optimizer: torch.optim.Optimizer) -> None:
        """The trained module: the outermost module called in this step whose parameters the
        optimizer holds most of (or, if it holds none of any, the largest one called)."""
        held = {id(p) for p in _trainable(optimizer)}
        best, best_share = None, -1.0
        for call in self.model_calls:
            own = [p for p in call.module.parameters() if p.requires_grad]
            share = sum(id(p) in held for p in own) / max(len(own), 1)
            if share > best_share or (share == best_share and best is not None
                                      and len(own) > sum(1 for _ in best.parameters())):
                best, best_share = call.module, share
        if best is None:
            return
        self.model = best
        self.record.model_name = type(best).__name__
        self.initial_state = {k: v.detach().clone() for k, v in best.state_dict().items()}
        own_ids = {id(p) for p in best.parameters()}
        self.record.unheld = [n for n, p in best.named_parameters() if p.requires_grad and id(p) not in held]
        self.record.foreign = sum(1 for p in _trainable(optimizer) if id(p) not in own_ids)
        self.record.dropout_or_norm = any(isinstance(m, (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase))
                                          for m in best.modules())
        self._training_in_step = next((c.module.training for c in self.model_calls if c.module is best), None)

    # -- batches ------------------------------------------------------------------------------------------
    def _wrap_loader_iter(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def __iter__(loader: Any) -> Any:
            iterator = original(loader)
            watcher.loaders[id(iterator)] = loader
            if torch.is_grad_enabled():
                count = watcher.loader_iters.get(id(loader), 0) + 1
                watcher.loader_iters[id(loader)] = count
                if loader is watcher.source_loader:
                    watcher.record.epochs_started = count
                    if count >= 2:
                        watcher.record.epoch_starts.append(len(watcher.record.steps))
                    if count >= 2 and watcher._boundary is None:
                        watcher._set_boundary()
                if not watcher.record.loader_line:
                    watcher.record.loader_line = watcher._user_line()
                if watcher.rank_probe is not None:
                    watcher.rank_probe.on_epoch(loader)
            return iterator

        return __iter__

    def _wrap_loader_next(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def __next__(iterator: Any) -> Any:
            start = time.perf_counter()
            batch = original(iterator)
            watcher._waited += time.perf_counter() - start
            loader = watcher.loaders.get(id(iterator))
            if loader is not None:
                recent = watcher.last_batch.get(id(loader))
                if recent is None:
                    recent = watcher.last_batch[id(loader)] = collections.deque(maxlen=2)
                recent.append(batch)
                if watcher.val_loader is None and loader is not watcher.source_loader and not torch.is_grad_enabled():
                    watcher.val_loader = loader
            return batch

        return __next__

    def _keep_batch(self) -> None:
        """Keep this step's model inputs and loss target, and tell whether they are the
        training loader's batch as it comes (then the loader itself can be used)."""
        if self._steady_step():
            return
        loss = self._step_loss()
        calls = [c for c in self.model_calls if c.module is self.model]
        if loss is None or not calls:
            self.direct = self._steady = False
            return
        # The model call whose output the loss read (with accumulation, the step's last one);
        # after the first step, a step with one call needs no search.
        if len(calls) == 1 and (self.kept or (self.follower and self.record.steps)):
            call = calls[0]
        else:
            call, (key, view) = next(((c, found) for c in reversed(calls)
                                      if (found := self._find_prediction(c.output, loss.prediction))[1] is not None),
                                     (calls[-1], (None, None)))
            if not self.kept:
                self.output_key, self.output_view = key, view
        source, direct = self._direct_source(call, loss), True
        if source is None:
            direct = False
            inputs = _tensor_ids((call.args, call.kwargs))
            for loader_id, recent in self.last_batch.items():
                for batch in recent:
                    if inputs & _tensor_ids(batch):
                        source = self._loader(loader_id)
                        direct = self._is_direct(batch, call, loss)
        if source is not None and self.source_loader is None:
            self.source_loader = source
        if direct and source is self.source_loader and (self.train_loader is None or source is self.train_loader):
            self.train_loader = source
        else:
            self.direct = False
        self._samples = _batch_size(call.args) or _batch_size(call.kwargs)
        self._steady = self.direct and self.train_loader is not None and (
            self.follower or len(self.kept) >= KEPT_WHILE_DIRECT)
        if (self.direct and len(self.kept) >= KEPT_WHILE_DIRECT) or self.follower:
            return
        size = _nbytes(call.args) + _nbytes(call.kwargs) + _nbytes(loss.target)
        if self.kept_bytes + size <= MAX_KEPT_BYTES:
            copy = not direct  # a loader's own batch is new every step: kept as it is, not copied
            self.kept.append(Kept(_detached(call.args, copy), _detached(call.kwargs, copy),
                                  _detached(loss.target, copy)))
            self.kept_bytes += size

    def _steady_step(self) -> bool:
        """A step of a loop that feeds the training loader's batches to the model as they come, with every
        batch it needs kept: the batch's sample count taken from the model call, and True, on all steps
        but one in ``DIRECT_EVERY`` (the full search, which tells whether the loop still does so)."""
        if not self._steady or not len(self.record.steps) % DIRECT_EVERY or not self.model_calls:
            return False
        call = self.model_calls[-1]
        first = call.args[0] if call.module is self.model and len(call.args) == 1 else None
        if not isinstance(first, torch.Tensor) or not first.dim():
            return False
        self._samples = first.shape[0]
        return True

    @staticmethod
    def _is_direct(batch: Any, call: ModelCall, loss: LossCall) -> bool:
        """Whether the model was called on ``batch[0]`` alone and the loss on ``batch[1]``."""
        return (isinstance(batch, (list, tuple)) and len(batch) == 2 and len(call.args) == 1
                and not call.kwargs and call.args[0] is batch[0] and loss.target is batch[1])

    def _direct_source(self, call: ModelCall, loss: LossCall) -> Any:
        """The source loader, when this step used its latest batch directly (the common case,
        told in a few identity tests; otherwise every recent batch of every loader is searched)."""
        if self.source_loader is None:
            return None
        recent = self.last_batch.get(id(self.source_loader))
        return self.source_loader if recent and self._is_direct(recent[-1], call, loss) else None

    def _step_loss(self) -> LossCall | None:
        """This step's call of the loss function behind backward() (the same function, or a
        module of the same class: a model may build its loss module in every forward)."""
        if self.loss_call is None:
            return None
        fn = self.loss_call.fn
        same = [c for c in self.loss_calls if c.fn is fn or (isinstance(fn, nn.Module) and type(c.fn) is type(fn))]
        return same[-1] if same else None

    @classmethod
    def _find_prediction(cls, output: Any, prediction: Any) -> tuple[str | int | None, tuple[int, ...] | None]:
        """Where the loss's prediction is in the model's output: (key or None, view)."""
        view = cls._view_of(output, prediction)
        if view is not None:
            return None, view
        items: Iterable[tuple[str | int, Any]] = ()
        if isinstance(output, Mapping):
            items = ((k, v) for k, v in output.items() if isinstance(k, str))
        elif isinstance(output, (tuple, list)):
            items = enumerate(output)
        for key, value in items:
            view = cls._view_of(value, prediction)
            if view is not None:
                return key, view
        return None, None

    @staticmethod
    def _view_of(output: Any, prediction: Any) -> tuple[int, ...] | None:
        """See ``output_view``."""
        if not isinstance(output, torch.Tensor) or not isinstance(prediction, torch.Tensor):
            return None
        if prediction is output:
            return ()
        if prediction.numel() != output.numel() or prediction.dim() == 0:
            return None
        shape = (-1, *prediction.shape[1:])
        with torch.no_grad():
            if torch.equal(output.detach().reshape(shape), prediction.detach()):
                return shape
        return None

    def _read_grads(self, params: list[torch.Tensor], index: int) -> tuple[list[bool], Any]:
        """The step's gradient norms (see :func:`_grad_norms`), on the first ``DENSE_GRAD_STEPS``
        steps of each optimizer (``RANK_DENSE_GRAD_STEPS`` in a rank of a distributed run) and every
        ``GRAD_EVERY``-th after them; on the others (None: not read) unless a parameter of the first
        optimizer that has had no non-zero gradient yet holds one now, so that ``never_grad`` misses
        no gradient. Once each of them has had one, the other steps look at no gradient at all (a test
        per tensor would cost every step of a model with hundreds of them)."""
        if self.follower:
            return [], None
        n = self.record.optimizers[index].steps
        if n < (DENSE_GRAD_STEPS if self.rank_probe is None else RANK_DENSE_GRAD_STEPS) or n % GRAD_EVERY == 0:
            return _grad_norms(params)
        if index == 0 and len(self.ever_grad) >= len(params):
            return [], None  # every parameter has had a gradient: nothing to learn from this step's
        has = [p.grad is not None for p in params]
        if not any(has):
            return has, []  # nothing to read: no gradient at all
        if index == 0 and any(h and i not in self.ever_grad for i, h in enumerate(has)):
            return _grad_norms(params)
        return has, None

    def _read_pending(self) -> None:
        values = self._scalars.read()
        for pending in self._pending:
            self._settle(pending, values)
        self._pending.clear()

    def _settle(self, pending: Pending, values: list[float]) -> None:
        norms = pending.read(values)
        if pending.step.optimizer == 0 and len(self.ever_grad) < len(norms):
            self.ever_grad.update(i for i, n in enumerate(norms) if n)

    # -- the end ------------------------------------------------------------------------------------------
    def created_optimizer(self) -> torch.optim.Optimizer | None:
        """The first optimizer the script built that is still alive (for a loop that never steps)."""
        return next((o for ref in self.created if (o := ref()) is not None), None)

    def _finish(self) -> None:
        self._read_pending()
        self.record.backwards = self._backwards_total
        if self.monitor is not None:
            resources = self.monitor.finish()
            # The batches kept for the staged checks are dldoctor's memory, not the loop's.
            memory = tuple(m - self._kept_at[i] for m, i in zip(resources.memory, resources.memory_steps))
            self.record.resources = dataclasses.replace(resources, memory=memory)
        if not self.optimizers:
            created = self.created_optimizer()
            if created is not None and self.model is None:
                self._choose_model(created)
                self._keep_batch()  # a loop that never steps: the last step's batch is what there is
            return
        params = _trainable(self.optimizers[0])
        if self.model is not None:
            names = {id(p): n for n, p in self.model.named_parameters()}
            self.record.never_grad = [names.get(id(p), f"parameter {i}") for i, p in enumerate(params)
                                      if i not in self.ever_grad]
        if self.source_loader is not None:
            try:
                self.record.train_batches_per_epoch = len(self.source_loader)
            except TypeError:
                self.record.train_batches_per_epoch = None
