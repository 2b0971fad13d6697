"""Typed keys for what checks share through the context, and the store they index.

A measurement, a report or a result one check publishes for another is stored under a
:class:`Key` object, not a string: the key carries the value's type, so
``ctx.measure(FORWARD_TRACE, fn)`` is a ``ForwardTrace`` to a type checker, and two
packages cannot collide by picking the same name (keys are equal only to themselves
and to their own parametrised forms, whatever their names). Names stay for people:
they show in ``diagnose(measurements=...)``, in the JSON report's ``reports`` and in
error messages. The built-in measurement keys are declared, once each, in
:mod:`dldoctor.probes.keys`; reports and check results in :mod:`dldoctor.api.keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")


class Key(Generic[T]):
    """The name of one value of type ``T`` shared through the context (cf. pytest's ``StashKey[T]``).

    Declare a key once, at module level, with its type and a one-line doc::

        LOGIT_STATS = Key[LogitStats]("my_plugin:logit_stats", "mean and spread of the logits at init")

    A key that stands for a family of values (one per batch, per split, per fraction
    of the data) is parametrised with :meth:`at`: ``TRAINING_FRACTION.at(0.5)``.
    """

    __slots__ = ("_family", "doc", "name", "params")

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.doc = doc
        self.params: tuple[object, ...] = ()
        self._family: Key[T] = self

    def at(self, *params: object) -> Key[T]:
        """The member of this key's family for ``params`` (named ``name:param:...``); equal
        to every other ``at`` with the same parameters."""
        member: Key[T] = Key(":".join([self._family.name, *(str(p) for p in (*self.params, *params))]), self.doc)
        member.params = (*self.params, *params)
        member._family = self._family
        return member

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other._family is self._family and other.params == self.params

    def __hash__(self) -> int:
        return hash((id(self._family), self.params))

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


class Store:
    """Values by :class:`Key`, typed: ``store[key]`` is a ``T`` for a ``Key[T]``.

    Insertion-ordered like a dict (the JSON report lists reports in the order the
    checks wrote them).
    """

    def __init__(self) -> None:
        self._values: dict[Key[Any], Any] = {}

    def __getitem__(self, key: Key[T]) -> T:
        value: T = self._values[key]
        return value

    def __setitem__(self, key: Key[T], value: T) -> None:
        self._values[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Key[Any]]:
        return iter(self._values)

    @overload
    def get(self, key: Key[T]) -> T | None: ...

    @overload
    def get(self, key: Key[T], default: D) -> T | D: ...

    def get(self, key: Key[T], default: object = None) -> object:
        """The value of ``key``, or ``default`` when nothing was stored under it."""
        return self._values.get(key, default)

    def items(self) -> Iterator[tuple[Key[Any], Any]]:
        return iter(self._values.items())

    def by_name(self) -> dict[str, Any]:
        """``{key.name: value}``: plain data for plots and tools outside the run."""
        return {key.name: value for key, value in self._values.items()}
