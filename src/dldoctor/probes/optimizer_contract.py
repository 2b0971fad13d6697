"""The optimiser's contract with the training loop, measured on a copy of the model.

A loop (the user's, or dldoctor's own runs) relies on two things the optimiser
promises without saying:

* ``zero_grad()`` leaves no gradient of the last ``backward()`` behind, in any param
  group (torch's sets ``.grad`` to None, or to zeros with ``set_to_none=False``);
  otherwise every step applies the sum of all gradients so far;
* ``step()`` moves the parameters downhill. Every first-order method's first step is
  ``-D @ grad`` with ``D`` a positive diagonal (SGD and momentum: ``D = lr``; Adam,
  AdamW, Adamax, NAdam, RAdam: ``lr / (|g| + eps)`` or ``lr``; RMSprop, Adagrad,
  Adadelta, Adafactor: ``lr / sqrt(running g^2)``; Rprop: ``lr * sign``), or for Muon
  the orthogonalised ``-grad``, whose inner product with ``-grad`` is the sum of the
  gradient's singular values. So the cosine between the first update and ``-grad``
  is strictly positive for all of them; measured on a small MLP with each torch
  optimiser's defaults (torch 2.13): 1.0 for SGD, ASGD, RAdam; 0.60-0.76 for the rest.

:func:`measure_optimizer_contract` runs backward, one ``step()`` and ``zero_grad()``
on a fresh copy of the model with the spec's optimiser, and a plain gradient step of
the same length on a second copy as the reference. Tensors stay inside; the result
is plain numbers.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dldoctor.loading.user_traceback import _is_library
from dldoctor.probes.forward_trace import code_location
from dldoctor.runtime.rng import isolated_rng

#: The reference step is no longer than this fraction of the weights' norm: short enough
#: that the first-order decrease ``lr * |g|^2`` dominates the curvature term on any
#: smooth loss, long enough to move a float32 loss well above its rounding (~1e-7).
REFERENCE_STEP = 0.01


@dataclasses.dataclass(frozen=True)
class GroupClearing:
    """One param group after ``backward()``, ``step()`` and ``zero_grad()``.

    Attributes:
        index: the group's position in ``optimizer.param_groups``.
        tensors: its parameter tensors that had a non-zero gradient before ``zero_grad()``.
        values: their number of values.
        left_tensors: of those, the tensors whose ``.grad`` is still there (not None, not
            all zeros) after ``zero_grad()``.
        left_values: their number of values.
        left_names: their parameter names.
    """

    index: int
    tensors: int
    values: int
    left_tensors: int
    left_values: int
    left_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FirstStep:
    """The optimiser's first step on one batch, and a plain gradient step for reference.

    Attributes:
        cosine: cosine between the update (every parameter the optimiser holds) and the
            negative gradient; None when the step changed nothing.
        update_norm: the update's norm.
        grad_norm: the gradient's norm.
        loss_before: the loss on the batch before the step.
        loss_after: the loss on the same batch (same dropout masks) after it.
        reference_lr: learning rate of the reference step ``p -= lr * grad`` on a second
            copy: as long as the optimiser's update, at most ``REFERENCE_STEP`` of the weights.
        reference_after: the loss on the same batch after the reference step.
        decay_off: weight decay was set to 0 in the param groups for this step (decay pulls
            the weights towards zero whatever the gradient, so with a large decay and a
            small gradient a correct step need not point along ``-grad``).
    """

    cosine: float | None
    update_norm: float
    grad_norm: float
    loss_before: float
    loss_after: float
    reference_lr: float
    reference_after: float
    decay_off: bool


@dataclasses.dataclass(frozen=True)
class OptimizerContract:
    """What ``zero_grad()`` and one ``step()`` of the spec's optimiser did.

    Attributes:
        optimizer: the optimiser's class name.
        user_class: the class (or the base it inherits from below torch) is defined in the
            user's code.
        step_location: ``file:line`` of the class's ``step`` when the user wrote it, else "".
        zero_grad_location: the same for ``zero_grad``.
        class_location: ``file:line`` of the class when the user wrote it, else "".
        maximize: some param group has ``maximize=True``.
        clearing: per param group, what ``zero_grad()`` left (empty when it could not run).
        first_step: the step and its reference (None when ``step()`` could not run).
        error: why a part could not be measured ("" when all was).
    """

    optimizer: str
    user_class: bool
    step_location: str
    zero_grad_location: str
    class_location: str
    maximize: bool
    clearing: tuple[GroupClearing, ...]
    first_step: FirstStep | None
    error: str = ""


def _class_location(cls: type, roots: Iterable[Path]) -> str:
    """``file:line`` of ``cls`` when it is defined under the user's folders, else ""."""
    try:
        filename = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return ""
    if not filename or _is_library(filename):
        return ""
    root_strs = tuple(str(Path(r).resolve()) for r in roots)
    if root_strs and not os.path.realpath(filename).startswith(root_strs):
        return ""
    return f"{Path(filename).name}:{line}"


def _loss(model: nn.Module, batch: Any, forward: Callable, loss_fn: Callable, seed: int,
          backward: bool) -> float:
    """The loss on ``batch`` under ``seed`` (the same dropout masks each time); backward when asked."""
    with isolated_rng(seed):
        if backward:
            outputs, targets = forward(model, batch)
            loss = loss_fn(outputs, targets)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
                raise ValueError("the loss is not a scalar that requires grad")
            loss.backward()
        else:
            with torch.no_grad():
                outputs, targets = forward(model, batch)
                loss = loss_fn(outputs, targets)
    return float(loss.detach().float().reshape(-1)[0])


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum(torch.sum(x.double() * y.double()) for x, y in zip(a, b)))


def _norm(a: list[torch.Tensor]) -> float:
    return math.sqrt(max(_dot(a, a), 0.0))


def _nonzero(t: torch.Tensor | None) -> bool:
    """Whether a gradient holds any non-zero value (sparse ones included)."""
    if t is None:
        return False
    return bool(torch.count_nonzero(t.coalesce().values() if t.is_sparse else t))


def _clearing(optimizer: torch.optim.Optimizer, names: dict[int, str],
              grads: dict[int, torch.Tensor]) -> tuple[GroupClearing, ...]:
    groups = []
    for index, group in enumerate(optimizer.param_groups):
        had = [p for p in group["params"] if _nonzero(grads.get(id(p)))]
        left = [p for p in had if _nonzero(p.grad)]
        groups.append(GroupClearing(index, len(had), sum(p.numel() for p in had), len(left),
                                    sum(p.numel() for p in left), tuple(names[id(p)] for p in left)))
    return tuple(groups)


def measure_optimizer_contract(
    make_model: Callable[[], nn.Module],
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    batch: Any,
    forward: Callable[[nn.Module, Any], tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Any],
    seed: int,
    roots: Iterable[Path] = (),
) -> OptimizerContract:
    """Backward, ``step()`` and ``zero_grad()`` of the spec's optimiser on a fresh copy.

    ``make_model`` returns a fresh copy of the model in its initial state (called twice:
    the optimiser's copy and the reference's). An optimiser that holds tensors which are
    not the copy's parameters (a factory that ignores its argument) is not stepped, so
    the user's own objects are never touched.
    """
    roots = tuple(roots)
    model = make_model()
    try:
        optimizer = make_optimizer(model)
    except Exception as exc:  # the factory's own failure is reported by the checks that build it
        return OptimizerContract("", False, "", "", "", False, (), None,
                                 f"the optimizer factory raised {type(exc).__name__}: {exc}")
    cls = type(optimizer)
    user_base = next((c for c in cls.__mro__ if c.__module__.split(".")[0] not in ("torch", "builtins")), None)
    class_location = _class_location(user_base, roots) if user_base is not None else ""
    base = OptimizerContract(
        optimizer=cls.__name__, user_class=bool(class_location),
        step_location=code_location(getattr(cls, "step", None), roots),
        zero_grad_location=code_location(getattr(cls, "zero_grad", None), roots),
        class_location=class_location,
        maximize=any(group.get("maximize") is True for group in optimizer.param_groups),
        clearing=(), first_step=None)
    names = {id(p): n for n, p in model.named_parameters()}
    held = [p for group in optimizer.param_groups for p in group["params"]]
    if any(id(p) not in names for p in held):
        return dataclasses.replace(base, error="the optimiser holds tensors that are not parameters of the model "
                                               "it was given")
    decay_off = False
    for group in optimizer.param_groups:
        decay = group.get("weight_decay")
        if isinstance(decay, (int, float)) and not isinstance(decay, bool) and decay != 0:
            group["weight_decay"] = 0.0
            decay_off = True
    model.train()
    try:
        before_loss = _loss(model, batch, forward, loss_fn, seed, backward=True)
    except Exception as exc:  # the forward's own failure is forward-pass's finding
        return dataclasses.replace(base, error=f"the training step raised {type(exc).__name__}: {exc}")
    grads = {id(p): (p.grad.detach().to_dense() if p.grad.is_sparse else p.grad.detach()).clone()
             for p in held if p.grad is not None}
    weights = [p.detach().clone() for p in held]
    errors = []
    first_step = None
    try:
        optimizer.step()
        with torch.no_grad():
            update = [p.detach() - w for p, w in zip(held, weights)]
            gradient = [grads[id(p)] if id(p) in grads else torch.zeros_like(p) for p in held]
            u_norm, g_norm = _norm(update), _norm(gradient)
            cosine = -_dot(update, gradient) / (u_norm * g_norm) if u_norm > 0 and g_norm > 0 else None
        after_loss = _loss(model, batch, forward, loss_fn, seed, backward=False)
        first_step = _reference(make_model, names, held, batch, forward, loss_fn, seed, weights,
                                FirstStep(cosine, u_norm, g_norm, before_loss, after_loss, 0.0, math.nan, decay_off))
    except Exception as exc:  # e.g. an optimiser that needs a closure (LBFGS): no verdict
        errors.append(f"step() or the forward after it raised {type(exc).__name__}: {exc}")
    try:
        optimizer.zero_grad()
        clearing = _clearing(optimizer, names, grads)
    except Exception as exc:
        errors.append(f"zero_grad() raised {type(exc).__name__}: {exc}")
        clearing = ()
    return dataclasses.replace(base, clearing=clearing, first_step=first_step, error="; ".join(errors))


def _reference(make_model: Callable[[], nn.Module], names: dict[int, str], held: list[torch.Tensor], batch: Any,
               forward: Callable, loss_fn: Callable, seed: int, weights: list[torch.Tensor],
               step: FirstStep) -> FirstStep:
    """A plain gradient step, as long as the optimiser's (at most ``REFERENCE_STEP`` of the
    weights), on the same parameters of a second fresh copy, and the loss after it."""
    if step.cosine is None:
        return step
    w_norm = _norm(weights)
    length = min(step.update_norm, REFERENCE_STEP * w_norm) if w_norm > 0 else step.update_norm
    lr = length / step.grad_norm
    model = make_model()
    model.train()
    own = dict(model.named_parameters())
    params = [own[names[id(p)]] for p in held]
    _loss(model, batch, forward, loss_fn, seed, backward=True)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
    after = _loss(model, batch, forward, loss_fn, seed, backward=False)
    return dataclasses.replace(step, reference_lr=lr, reference_after=after)
