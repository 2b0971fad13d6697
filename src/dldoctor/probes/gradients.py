"""Where gradients go: one backward pass with each module's output watched.

``measure_grad_flow`` runs one batch forward, through the loss and backward on a
copy of the model and records, for every parameter, whether it got a gradient
(None, exactly zero, or not), and for every module that ran, whether gradient
tracking was on during the call, whether its output required grad and whether a
gradient reached that output from the loss. It also walks the autograd graph of
the loss for leaf tensors that require grad but are not parameters of the model
(layers kept in a plain Python list, tensors that are not ``nn.Parameter``).
``optimizer_coverage`` says which of the model's parameters an optimiser holds.
Hooks are removed in ``finally``; no tensor leaves this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dldoctor.runtime.tensors import all_finite, iter_tensors


@dataclasses.dataclass(frozen=True)
class ParamFlow:
    """One parameter after backward: ``has_grad`` is ``.grad is not None``."""

    name: str
    module_path: str
    numel: int
    requires_grad: bool
    has_grad: bool
    grad_zero: bool
    grad_nonfinite: bool


@dataclasses.dataclass(frozen=True)
class ModuleFlow:
    """One module that ran (all its calls together).

    ``input_zero_frac`` is the largest fraction of exact zeros in its first floating
    input over its calls: 1.0 when everything feeding it is zero (dead units).
    """

    path: str
    type_name: str
    calls: int
    ran_without_grad: bool
    output_requires_grad: bool
    output_got_grad: bool
    input_zero_frac: float = 0.0


@dataclasses.dataclass(frozen=True)
class UnregisteredLeaf:
    """A tensor that requires grad and feeds the loss but is not a model parameter.

    ``owner`` is where the model keeps it (``blocks[0]``: a module in a plain list),
    "" when it was not found among the model's attributes.
    """

    shape: tuple[int, ...]
    numel: int
    owner: str
    owner_kind: str


@dataclasses.dataclass(frozen=True)
class GradFlow:
    """What one forward/loss/backward did to gradients, as plain data."""

    params: tuple[ParamFlow, ...]
    modules: tuple[ModuleFlow, ...]
    module_types: tuple[tuple[str, str], ...]
    unregistered: tuple[UnregisteredLeaf, ...]
    error: str = ""
    loss_value: float | None = None
    """The loss of this batch (None when forward or the loss raised, or it is not one number)."""
    crashed: bool = False
    """Whether forward, the loss or backward raised (``error`` then says what)."""

    def called(self) -> frozenset[str]:
        return frozenset(m.path for m in self.modules)

    def module_flow(self, path: str) -> ModuleFlow | None:
        return next((m for m in self.modules if m.path == path), None)


@dataclasses.dataclass(frozen=True)
class OptimizerCoverage:
    """Which model parameters the spec's optimiser holds.

    ``foreign_tensors`` counts tensors in its param groups that are not parameters
    of the model it was given (it was built from some other object).
    """

    param_names: frozenset[str]
    foreign_tensors: int
    error: str = ""


def _grad_state(p: torch.Tensor) -> tuple[bool, bool, bool]:
    g = p.grad
    if g is None:
        return False, False, False
    values = g.coalesce().values() if g.is_sparse else g
    finite = all_finite(values)
    zero = finite and int(torch.count_nonzero(values)) == 0
    return True, zero, not finite


def _owners(model: nn.Module, wanted: dict[int, torch.Tensor]) -> dict[int, tuple[str, str]]:
    """Find where the model keeps the tensors ``wanted`` (by id), outside registered parameters."""
    found: dict[int, tuple[str, str]] = {}

    def note(t: Any, where: str, kind: str) -> None:
        if isinstance(t, torch.Tensor) and id(t) in wanted:
            found.setdefault(id(t), (where, kind))
        elif isinstance(t, nn.Module):
            for p in t.parameters():
                if id(p) in wanted:
                    found.setdefault(id(p), (where, kind))

    for path, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr.startswith("_"):
                continue
            where = f"{path}.{attr}" if path else attr
            if isinstance(value, torch.Tensor):
                note(value, where, "a plain tensor attribute, not an nn.Parameter")
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    note(item, f"{where}[{i}]", f"a plain Python {type(value).__name__}")
            elif isinstance(value, dict):
                for key, item in value.items():
                    note(item, f"{where}[{key!r}]", "a plain Python dict")
    return found


def _graph_leaves(loss: torch.Tensor) -> list[torch.Tensor]:
    """Leaf tensors that require grad and feed ``loss`` (AccumulateGrad nodes)."""
    leaves: list[torch.Tensor] = []
    seen: set[Any] = set()
    todo = [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return leaves


class _Watcher:
    """Module hooks that note grad mode and whether each output receives a gradient."""

    def __init__(self, model: nn.Module):
        self.paths: dict[nn.Module, str] = {}
        for name, module in model.named_modules():
            self.paths.setdefault(module, name)
        self.info: dict[str, dict[str, Any]] = {}
        self.handles: list[Any] = []
        for module in self.paths:
            self.handles.append(module.register_forward_hook(self._post))

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        path = self.paths.get(module, "?")
        rec = self.info.setdefault(path, dict(type_name=type(module).__name__, calls=0, no_grad=False,
                                              requires=False, got=False, zero=0.0))
        rec["calls"] += 1
        first = next((t for t in iter_tensors(args) if t.is_floating_point() and t.numel()), None)
        if first is not None:
            with torch.no_grad():
                # count_nonzero: a tenth of the cost of (x == 0).mean() on CPU, on every module call
                rec["zero"] = max(rec["zero"], 1.0 - int(torch.count_nonzero(first)) / first.numel())
        rec["no_grad"] |= not torch.is_grad_enabled()
        for t in iter_tensors(output):
            if t.is_floating_point() and t.requires_grad:
                rec["requires"] = True
                self.handles.append(t.register_hook(lambda g, rec=rec: rec.__setitem__("got", True)))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def measure_grad_flow(
    model: nn.Module,
    batch: Any,
    forward: Callable[[nn.Module, Any], tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Any],
) -> GradFlow:
    """Forward, loss and backward on ``model`` (a copy: it gets gradients), watched."""
    model.train()
    module_types = tuple((name, type(m).__name__) for name, m in model.named_modules())
    watcher = _Watcher(model)
    unregistered: list[UnregisteredLeaf] = []
    error = ""
    loss_value = None
    crashed = False
    try:
        outputs, targets = forward(model, batch)
        loss = loss_fn(outputs, targets)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss_value = float(loss.detach().float().item())
        if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
            params = {id(p) for p in model.parameters()}
            inputs = {id(t) for t in iter_tensors(batch)}
            strays = {id(t): t for t in _graph_leaves(loss) if id(t) not in params and id(t) not in inputs}
            owners = _owners(model, strays)
            for key, t in strays.items():
                owner, kind = owners.get(key, ("", ""))
                unregistered.append(UnregisteredLeaf(tuple(t.shape), t.numel(), owner, kind))
            loss.backward()
        else:
            error = "the loss is not a scalar that requires grad"
    except Exception as exc:  # a later batch may fail where the first did not; report, do not raise
        error = f"{type(exc).__name__}: {exc}"
        crashed = True
    finally:
        watcher.remove()
    flows = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            has, zero, nonfinite = _grad_state(p)
            flows.append(ParamFlow(name, name.rpartition(".")[0], p.numel(), p.requires_grad, has, zero, nonfinite))
    modules = tuple(
        ModuleFlow(path, r["type_name"], r["calls"], r["no_grad"], r["requires"], r["got"], r["zero"])
        for path, r in watcher.info.items()
    )
    return GradFlow(tuple(flows), modules, module_types, tuple(unregistered), error, loss_value, crashed)


def optimizer_coverage(model: nn.Module, optimizer: torch.optim.Optimizer,
                       original: nn.Module | None = None) -> OptimizerCoverage:
    """Which of ``model``'s parameters ``optimizer`` (built from ``model.parameters()``) holds.

    ``original`` is the user's own model object when the spec gave one (``model`` is
    then a copy of it): an optimiser factory that ignores its argument and uses the
    original's parameters by name (``model.head.parameters()``) holds them, in the
    user's own loop, so they count as held under the same names.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    if original is not None:
        names.update({id(p): name for name, p in original.named_parameters()})
    held: set[str] = set()
    foreign = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in names:
                held.add(names[id(p)])
            else:
                foreign += 1
    return OptimizerCoverage(frozenset(held), foreign)
