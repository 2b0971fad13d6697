"""Copy a model as ``copy.deepcopy`` would, in a fraction of its Python time.

Every experiment starts from a fresh copy of the user's model, and stage 1 takes a
dozen of them: on a small model ``copy.deepcopy`` spends most of its time walking
the sixteen bookkeeping attributes that every ``nn.Module`` carries (hook tables,
most of them empty) through the generic pickle protocol. :func:`copy_model` copies
a plain module's attributes directly: numbers and strings as they are, empty hook
tables as new empty tables, parameters and buffers with their own ``__deepcopy__``,
sub-modules recursively, and everything else (hooks that are set, lists of
tensors, user objects) with ``copy.deepcopy`` and the same memo, so shared
objects stay shared (tied weights, an LSTM's flat weight list).

The copy ends as ``copy.deepcopy`` ends, with the class's ``__setstate__``. A
module whose class takes part in copying or pickling itself otherwise (its own
``__deepcopy__``, ``__reduce_ex__`` or ``__getstate__``, or ``__slots__``, as
parametrised modules do) is handed to ``copy.deepcopy`` whole.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from typing import Any

from torch import nn

_ATOMIC = (bool, int, float, complex, str, bytes, type(None))
_TENSOR_TABLES = ("_parameters", "_buffers")


@functools.cache
def _plain(cls: type[nn.Module]) -> bool:
    """Whether ``cls`` copies the way ``nn.Module`` does (nothing of its own)."""
    return (
        getattr(cls, "__deepcopy__", None) is None
        and cls.__reduce_ex__ is object.__reduce_ex__
        and cls.__reduce__ is object.__reduce__
        and cls.__getstate__ is nn.Module.__getstate__
        and not any("__slots__" in vars(c) for c in cls.__mro__ if c is not object)
    )


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``, equal to ``copy.deepcopy(model)``."""
    return _copy_module(model, {})


def _copy_module(module: nn.Module, memo: dict[int, Any]) -> nn.Module:
    found: nn.Module | None = memo.get(id(module))
    if found is not None:
        return found
    cls = type(module)
    if not _plain(cls):  # type: ignore[arg-type]  # a class is hashable; mypy checks the instances' __hash__
        return copy.deepcopy(module, memo)
    new = cls.__new__(cls)
    memo[id(module)] = new
    state: dict[str, Any] = {}
    for key, value in module.__dict__.items():
        kind = type(value)
        if key == "_compiled_call_impl":  # nn.Module.__getstate__ leaves it out too
            continue
        if kind in _ATOMIC:
            state[key] = value
        elif key == "_modules":
            state[key] = kind((name, None if child is None else _copy_module(child, memo))
                              for name, child in value.items())
        elif key in _TENSOR_TABLES:
            state[key] = kind((name, None if t is None else copy.deepcopy(t, memo)) for name, t in value.items())
        elif (kind is OrderedDict or kind is dict or kind is set) and not value:
            state[key] = kind()
        else:
            state[key] = copy.deepcopy(value, memo)
    # As copy.deepcopy ends (a class's own __setstate__ fills in defaults).
    new.__setstate__(state)  # type: ignore[no-untyped-call]  # torch leaves Module.__setstate__ unannotated
    return new
