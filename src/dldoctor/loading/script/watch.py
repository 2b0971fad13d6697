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

import dataclasses
import math
import sys
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dldoctor.loading.script.record import NoGradPass, OptimizerInfo, StepRecord, WatchedLoop
from dldoctor.loading.user_traceback import _is_library

#: torch.nn.functional losses watched when called outside a loss module.
FUNCTIONAL_LOSSES = ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                     "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
                     "gaussian_nll_loss", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
                     "soft_margin_loss", "multilabel_soft_margin_loss", "triplet_margin_loss")

#: Batches kept for the staged checks, at most (the first ones of the watched steps).
MAX_KEPT_BYTES = 256 * 2**20


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


@dataclasses.dataclass
class LossCall:
    """A loss computed in the current step: a loss module or a ``torch.nn.functional`` loss."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    prediction: Any
    target: Any
    output: Any


@dataclasses.dataclass
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


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value) if isinstance(value, tuple) else [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    return 0


def _all_reset(params: Iterable[torch.Tensor]) -> bool:
    """Whether every gradient is None or all zeros."""
    return all(p.grad is None or not bool(p.grad.detach().ne(0).any()) for p in params)


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


class Watcher:
    """Records the user's loop while installed (a context manager); see the module doc."""

    def __init__(self, record: WatchedLoop, budget: Budget, roots: tuple[Path, ...]) -> None:
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
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.loaders: dict[int, Any] = {}  # iterator id -> loader
        self.last_batch: dict[int, Any] = {}  # loader id -> its last batch
        self.loader_iters: dict[int, int] = {}  # loader id -> times iterated
        self.direct = True
        """Every kept step called the model on batch[0] of the training loader and the loss on batch[1]."""
        self.ever_grad: set[int] = set()
        self._depth = 0
        self._in_loss = 0
        self._since_step: dict[int, int] = {}  # optimizer id -> backward calls since its last step
        self._fresh: dict[int, bool | None] = {}  # optimizer id -> reset before the first of those
        self._backwards_total = 0
        self._last_loss: float | None = None
        self._boundary: int | None = None
        self._pass: NoGradPass | None = None
        self._handles: list[Any] = []
        self._patches: list[tuple[Any, str, Any]] = []
        self._training_in_step: bool | None = None

    # -- install / remove ---------------------------------------------------------------------
    def __enter__(self) -> Watcher:
        from torch.nn.modules import module as module_hooks
        from torch.optim import optimizer as optimizer_hooks

        self._handles += [optimizer_hooks.register_optimizer_step_pre_hook(self._pre_step),
                          optimizer_hooks.register_optimizer_step_post_hook(self._post_step),
                          module_hooks.register_module_forward_pre_hook(self._forward_pre),
                          module_hooks.register_module_forward_hook(self._forward_post)]
        self._patch(torch.Tensor, "backward", self._wrap_backward)
        self._patch(torch.optim.Optimizer, "__init__", self._wrap_optimizer_init)
        self._patch(torch.optim.lr_scheduler.LRScheduler, "step", self._wrap_scheduler_step)
        self._patch(torch.utils.data.DataLoader, "__iter__", self._wrap_loader_iter)
        from torch.utils.data import dataloader

        self._patch(dataloader._BaseDataLoaderIter, "__next__", self._wrap_loader_next)
        for name in FUNCTIONAL_LOSSES:
            if hasattr(torch.nn.functional, name):
                self._patch(torch.nn.functional, name, self._wrap_functional_loss)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
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
    def _forward_pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._depth += 1
        if isinstance(module, nn.modules.loss._Loss):
            self._in_loss += 1

    def _forward_post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._depth = max(0, self._depth - 1)
        if isinstance(module, nn.modules.loss._Loss):
            self._in_loss = max(0, self._in_loss - 1)
            if self._in_loss == 0 and len(args) >= 2 and torch.is_grad_enabled():
                self.loss_calls.append(LossCall(module, {}, args[0], args[1], output))
            return
        if self._depth != 0:
            return
        if torch.is_grad_enabled():
            self.model_calls.append(ModelCall(module, args, {}, output))
            if module is self.model:
                self._training_in_step = module.training if self._training_in_step is None else (
                    self._training_in_step and module.training)
        elif module is self.model:
            if self._pass is None:
                self._pass = NoGradPass(after_step=len(self.record.steps))
                self.record.no_grad_passes.append(self._pass)
                if self.record.steps and self._boundary is None:
                    self._boundary = len(self.record.steps)
            self._pass.calls += 1
            self._pass.training += int(module.training)

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
            with torch.no_grad():
                self._last_loss = float(tensor.detach().float())
        for optimizer in self.optimizers:
            # Reset at any backward() since the optimizer's last step counts: with several
            # optimizers (a GAN), another one's backward() may come first, before this one's
            # zero_grad(), and does not touch its gradients.
            key = id(optimizer)
            if not self._fresh.get(key):
                self._fresh[key] = _all_reset(_trainable(optimizer))
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

    def _wrap_scheduler_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def step(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
            # Schedulers step once in their constructor: only the calls after the first optimizer step count.
            if watcher.record.steps:
                watcher.record.scheduler_steps.append(len(watcher.record.steps))
                watcher.record.scheduler_name = watcher.record.scheduler_name or type(scheduler).__name__
            return original(scheduler, *args, **kwargs)

        return step

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if len(self.record.steps) >= self._stop_at():
            self.record.stopped = "budget"
            raise StopScript
        key = id(optimizer)
        if all(o is not optimizer for o in self.optimizers):
            self.optimizers.append(optimizer)
            self.record.optimizers.append(OptimizerInfo(
                type(optimizer).__name__, type(optimizer).__module__, dict(optimizer.defaults),
                [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
                len(_trainable(optimizer))))
            if len(self.optimizers) == 1:
                self._choose_model(optimizer)
        index = next(i for i, o in enumerate(self.optimizers) if o is optimizer)
        if not self.record.step_line:
            self.record.step_line = self._user_line()
        params = _trainable(optimizer)
        with torch.no_grad():
            grads = [p.grad for p in params if p.grad is not None]
            nonzero = sum(bool(g.ne(0).any()) for g in grads)
            norm = float(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads]))) if grads else None
        if index == 0:
            self.ever_grad.update(i for i, p in enumerate(params) if p.grad is not None and bool(p.grad.ne(0).any()))
            self._keep_batch()
        self.record.steps.append(StepRecord(
            index=len(self.record.steps), optimizer=index, backwards=self._since_step.get(key, 0),
            fresh=self._fresh.get(key), grads_at_step=nonzero, held=len(params), loss=self._last_loss,
            training=self._training_in_step if index == 0 else None,
            lr=tuple(float(g.get("lr", math.nan)) for g in optimizer.param_groups), grad_norm=norm))
        self.record.optimizers[index].steps += 1
        self._since_step[key] = 0
        self._fresh.pop(key, None)

    def _post_step(self, optimizer: torch.optim.Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if optimizer is self.optimizers[0]:
            self.model_calls.clear()
            self.loss_calls.clear()
            self._training_in_step = None
            self._depth = 0

    def _stop_at(self) -> int:
        b = self.budget
        if self._boundary is None:
            return b.max_steps
        return min(b.max_steps, max(b.min_steps, self._boundary + b.after_boundary))

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
                if loader is watcher.train_loader:
                    watcher.record.epochs_started = count
                    if count >= 2 and watcher._boundary is None:
                        watcher._boundary = len(watcher.record.steps)
                if not watcher.record.loader_line:
                    watcher.record.loader_line = watcher._user_line()
            return iterator

        return __iter__

    def _wrap_loader_next(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watcher = self

        def __next__(iterator: Any) -> Any:
            batch = original(iterator)
            loader = watcher.loaders.get(id(iterator))
            if loader is not None:
                watcher.last_batch[id(loader)] = batch
                if not torch.is_grad_enabled() and watcher.val_loader is None and loader is not watcher.train_loader:
                    watcher.val_loader = loader
            return batch

        return __next__

    def _keep_batch(self) -> None:
        """Keep this step's model inputs and loss target, and tell whether they are the
        training loader's batch as it comes (then the loader itself can be used)."""
        loss = self._step_loss()
        calls = [c for c in self.model_calls if c.module is self.model]
        if loss is None or not calls:
            self.direct = False
            return
        # The model call whose output the loss read (with accumulation, the step's last one).
        call, view = next(((c, v) for c in reversed(calls) if (v := self._view_of(c.output, loss.prediction))
                           is not None), (calls[-1], None))
        if not self.kept:
            self.output_view = view
        source = None
        for loader_id, batch in self.last_batch.items():
            if (isinstance(batch, (list, tuple)) and len(batch) == 2 and len(call.args) == 1 and not call.kwargs
                    and call.args[0] is batch[0] and loss.target is batch[1]):
                source = next((ld for ld in self.loaders.values() if id(ld) == loader_id), None)
        if source is not None and (self.train_loader is None or source is self.train_loader):
            self.train_loader = source
        else:
            self.direct = False
        size = _nbytes(call.args) + _nbytes(call.kwargs) + _nbytes(loss.target)
        if self.kept_bytes + size <= MAX_KEPT_BYTES:
            self.kept.append(Kept(_detached(call.args), _detached(call.kwargs), _detached(loss.target)))
            self.kept_bytes += size

    def _step_loss(self) -> LossCall | None:
        if self.loss_call is None:
            return None
        same = [c for c in self.loss_calls if c.fn is self.loss_call.fn or
                getattr(c.fn, "__name__", None) == getattr(self.loss_call.fn, "__name__", 0)]
        return same[-1] if same else None

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

    # -- the end ------------------------------------------------------------------------------------------
    def created_optimizer(self) -> torch.optim.Optimizer | None:
        """The first optimizer the script built that is still alive (for a loop that never steps)."""
        return next((o for ref in self.created if (o := ref()) is not None), None)

    def _finish(self) -> None:
        self.record.backwards = self._backwards_total
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
        if self.train_loader is not None:
            try:
                self.record.train_batches_per_epoch = len(self.train_loader)
            except TypeError:
                self.record.train_batches_per_epoch = None
