"""What the objects of a training run hold, attribute by attribute: to say where memory grows.

A snapshot walks the objects a training step touches (the model's modules, the loss
function, the spec's forward, the optimiser, the dataset) and, for every attribute
path, counts the tensors and arrays it holds, their bytes, the autograd graph nodes
those tensors keep alive, and the items of the containers on the way. Two snapshots
taken some steps apart say which path grew: a list attribute that gains a tensor per
step, a loss object whose running total chains every step's graph to the next, a
hook registered again on every forward.

The walk reads ``__dict__``, containers and closure cells only: it never calls a
property or any other user code, and it stops at fixed limits so that a large
dataset cannot make it slow. Numbers only come out.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sysconfig
import types
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

#: Containers are walked to this depth below an attribute.
MAX_DEPTH = 6
#: Elements visited per container; a longer one is extrapolated from them.
MAX_ITEMS = 256
#: Autograd nodes counted per snapshot (a graph chained over thousands of steps is
#: reported as "at least" this many).
MAX_NODES = 20000

# nn.Module's own bookkeeping dicts: parameters, buffers and submodules are walked as
# such; the hook dicts are walked as containers (a hook registered per step grows one).
_MODULE_OWN = {"_parameters", "_buffers", "_modules", "training"}
_SKIP_TYPES = (type, types.ModuleType, types.BuiltinFunctionType, types.MethodWrapperType, str, bytes, int, float,
               bool, complex, type(None), torch.dtype, torch.device)
_ATOMS = frozenset({int, float, bool, str, bytes, complex, type(None)})
_CONTAINERS = (list, tuple, set, frozenset, deque)
_INDEX = re.compile(r"\.\d+(?=\.|$)|\[\d+\]")


@dataclasses.dataclass(frozen=True)
class Holding:
    """What one attribute path holds (extrapolated where a container was cut short)."""

    tensors: float = 0.0
    bytes: float = 0.0
    graph_nodes: float = 0.0
    items: float = 0.0

    def __sub__(self, other: Holding) -> Holding:
        return Holding(self.tensors - other.tensors, self.bytes - other.bytes, self.graph_nodes - other.graph_nodes,
                       self.items - other.items)

    def scaled(self, factor: float) -> Holding:
        return Holding(self.tensors * factor, self.bytes * factor, self.graph_nodes * factor, self.items * factor)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Holdings by attribute path after training step ``step`` (0-based)."""

    step: int
    holdings: Mapping[str, Holding]


class _Walker:
    """Adds what values hold into tallies ``[tensors, bytes, graph nodes, items]``.

    One walker per snapshot: a storage, a graph node or an object reached twice is
    counted once, under the first path that reaches it.
    """

    def __init__(self) -> None:
        self.storages: set[int] = set()
        self.nodes: set[int] = set()
        self.seen: set[int] = set()

    def add(self, value: Any, tally: list[float], depth: int = 0) -> None:
        cls = type(value)
        if cls in _ATOMS:
            return
        if isinstance(value, torch.Tensor):
            self.tensor(value, tally)
            return
        if cls is np.ndarray:
            tally[0] += 1
            tally[1] += value.nbytes
            return
        if isinstance(value, _SKIP_TYPES) or depth > MAX_DEPTH or id(value) in self.seen:
            return
        self.seen.add(id(value))
        if isinstance(value, nn.Module):
            for t in (*value.parameters(), *value.buffers()):
                self.tensor(t, tally)
        elif isinstance(value, _CONTAINERS):
            self._many(value if isinstance(value, (list, tuple)) else list(value), tally, depth, True)
        elif isinstance(value, (dict, Mapping)):
            self._many(list(value.values()), tally, depth, True)
        elif isinstance(value, types.FunctionType):
            self._many([c.cell_contents for c in (value.__closure__ or ()) if _filled(c)], tally, depth, False)
        elif isinstance(value, types.MethodType):
            self.add(value.__self__, tally, depth + 1)
        else:
            attrs = _instance_dict(value)
            if attrs:
                self._many(list(attrs.values()), tally, depth, False)

    def _many(self, values: list[Any] | tuple[Any, ...], tally: list[float], depth: int, container: bool) -> None:
        if container:
            tally[3] += len(values)
        if not values:
            return
        visited = values[:MAX_ITEMS]
        if len(visited) == len(values):
            for item in visited:
                self.add(item, tally, depth + 1)
            return
        inner = [0.0, 0.0, 0.0, 0.0]
        for item in visited:
            self.add(item, inner, depth + 1)
        scale = len(values) / len(visited)
        for i in range(4):
            tally[i] += inner[i] * scale

    def tensor(self, t: torch.Tensor, tally: list[float]) -> None:
        try:
            storage = t.untyped_storage()
            key = storage.data_ptr() or id(storage)
            if key not in self.storages:
                self.storages.add(key)
                tally[1] += storage.nbytes()
        except (RuntimeError, NotImplementedError):  # sparse, meta or wrapper tensors
            tally[1] += t.element_size() * t.numel()
        tally[0] += 1
        if t.grad_fn is not None:
            tally[2] += self._graph(t.grad_fn)

    def _graph(self, root: Any) -> int:
        """Autograd nodes reachable from ``root`` not yet counted in this snapshot."""
        count = 0
        todo = [root]
        while todo and len(self.nodes) < MAX_NODES:
            node = todo.pop()
            if node is None or id(node) in self.nodes:
                continue
            self.nodes.add(id(node))
            count += 1
            todo.extend(n for n, _ in getattr(node, "next_functions", ()) if n is not None)
        return count


def _instance_dict(value: Any) -> dict | None:
    """``value.__dict__`` without running a user ``__getattr__`` (or None)."""
    try:
        attrs = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return attrs if isinstance(attrs, dict) else None


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


_LIBRARY_DIRS = tuple({os.path.realpath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                       if (p := sysconfig.get_paths().get(key))})


def _is_library(fn: types.FunctionType) -> bool:
    """A function of an installed package or the standard library (torch's losses, ...):
    its module state is not the user's to fix, and walking it would only cost time."""
    path = os.path.realpath(fn.__code__.co_filename)
    return path.startswith(_LIBRARY_DIRS)


def _function_roots(name: str, fn: Any, depth: int = 0, seen: set[int] | None = None) -> dict[str, Any]:
    """Closure cells and referenced module globals of a function (or a bound method's
    object), following the functions it names two levels down (a helper that logs)."""
    if isinstance(fn, types.MethodType):
        return {name: fn.__self__}
    if not isinstance(fn, types.FunctionType):
        return {name: fn} if _instance_dict(fn) else {}
    if _is_library(fn):
        return {}
    seen = seen if seen is not None else set()
    if id(fn) in seen:
        return {}
    seen.add(id(fn))
    roots: dict[str, Any] = {}
    named = [(f"closure {v}", c.cell_contents) for v, c in zip(fn.__code__.co_freevars, fn.__closure__ or ())
             if _filled(c)]
    named += [(f"global {v}", fn.__globals__[v]) for v in fn.__code__.co_names if v in fn.__globals__]
    for label, value in named:
        if isinstance(value, types.FunctionType):
            if depth < 2 and value.__module__ == fn.__module__:
                roots.update(_function_roots(name, value, depth + 1, seen))
        elif not isinstance(value, (nn.Module, *_SKIP_TYPES)):
            roots.setdefault(f"{name}.<{label}>", value)
    return roots


def roots_of(model: nn.Module, loss_fn: Any = None, forward: Any = None, optimizer: Any = None,
             dataset: Any = None) -> dict[str, Any]:
    """The objects a snapshot walks, by the name a user knows them by."""
    roots: dict[str, Any] = {"model": model}
    if loss_fn is not None and not isinstance(loss_fn, types.FunctionType):  # a module or other callable object
        roots["loss_fn"] = loss_fn
    elif loss_fn is not None:
        roots.update(_function_roots("loss_fn", loss_fn))
    if forward is not None:
        roots.update(_function_roots("forward", forward))
    if optimizer is not None:
        roots["optimizer.state"] = getattr(optimizer, "state", {})
    if dataset is not None:
        roots["train_loader.dataset"] = dataset
    return roots


def _module_entries(walker: _Walker, prefix: str, module: nn.Module, tally) -> None:
    for path, sub in module.named_modules(prefix=prefix, remove_duplicate=True):
        own = tally(f"{path}.<parameters>")
        for key, value in vars(sub).items():
            if key in ("_parameters", "_buffers"):
                for t in value.values():
                    if t is not None:
                        walker.tensor(t, own)
            elif key not in _MODULE_OWN and not (type(value) in _ATOMS or (isinstance(value, (dict, list, set))
                                                                           and not value)):
                walker.add(value, tally(f"{path}.{key}"))


def snapshot(step: int, roots: Mapping[str, Any]) -> Snapshot:
    """Holdings of every attribute path under ``roots``, grouped by container path."""
    walker = _Walker()
    tallies: dict[str, list[float]] = {}

    def tally(path: str) -> list[float]:
        return tallies.setdefault(container_path(path), [0.0, 0.0, 0.0, 0.0])

    for name, root in roots.items():
        attrs = None if isinstance(root, (nn.Module, Mapping)) else _instance_dict(root)
        if isinstance(root, nn.Module):
            _module_entries(walker, name, root, tally)
        elif attrs is None:
            walker.add(root, tally(name))
        else:
            for key, value in attrs.items():
                walker.add(value, tally(f"{name}.{key}"))
    return Snapshot(step, {k: Holding(*v) for k, v in tallies.items() if any(v)})


def container_path(path: str) -> str:
    """``model.blocks.57.weight`` -> ``model.blocks``: elements of a growing list count for the list."""
    match = _INDEX.search(path)
    return path[:match.start()] if match else path


@dataclasses.dataclass(frozen=True)
class Growth:
    """How much one path gained between two snapshots, per step."""

    path: str
    per_step: Holding
    total: Holding
    steps: int
    still_growing: bool


def growth(snapshots: Iterable[Snapshot]) -> list[Growth]:
    """Paths that grew from the first to the last snapshot, largest first.

    ``still_growing``: the path also grew between the middle snapshot and the last.
    """
    snaps = sorted(snapshots, key=lambda s: s.step)
    if len(snaps) < 2:
        return []
    first, middle, last = snaps[0], snaps[len(snaps) // 2], snaps[-1]
    steps = last.step - first.step
    if steps <= 0:
        return []
    found = []
    for path, end in last.holdings.items():
        delta = end - first.holdings.get(path, Holding())
        if delta.bytes <= 0 and delta.graph_nodes <= 0 and delta.tensors <= 0 and delta.items <= 0:
            continue
        late = end - middle.holdings.get(path, Holding()) if middle is not last else delta
        still = late.bytes > 0 or late.graph_nodes > 0 or late.tensors > 0 or late.items > 0
        found.append(Growth(path, delta.scaled(1.0 / steps), delta, steps, still))
    return sorted(found, key=lambda g: (-g.total.bytes, -g.total.graph_nodes, -g.total.tensors, -g.total.items,
                                        g.path))
