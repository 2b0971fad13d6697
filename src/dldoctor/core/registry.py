"""Where checks come from: one door for built-in and third-party checks alike.

Built-in checks are the :class:`Check` subclasses found in the modules of the
``dldoctor.checks`` package (one check per file, so adding a check touches one
folder). They are loaded by the same function as a third-party package's checks,
declared in its entry-point group ``dldoctor.checks``:

    [project.entry-points."dldoctor.checks"]
    my-check = "my_package.checks:MyCheck"

An entry may name a :class:`Check` subclass, or a module/list holding several.
Setting ``DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party loading off.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from importlib.metadata import entry_points
from typing import Any, Iterable

from dldoctor.core.check import Check

ENTRY_POINT_GROUP = "dldoctor.checks"
AUTOLOAD_ENV = "DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_PACKAGE = "dldoctor.checks"


def builtin_references(package: str = BUILTIN_PACKAGE) -> tuple[str, ...]:
    """``module:`` references for every module of the built-in checks package, sorted."""
    import pkgutil

    root = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.walk_packages(root.__path__, prefix=f"{package}.") if not m.ispkg)
    return tuple(f"{name}:" for name in names)


@dataclasses.dataclass(frozen=True)
class Registered:
    """A check class and where it came from (``builtin`` or ``plugin:NAME``)."""

    check: type[Check]
    source: str


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """A third-party entry point that could not be loaded."""

    name: str
    error: str


def _resolve(reference: str) -> Any:
    module_name, _, attr = reference.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _checks_in(obj: Any) -> list[type[Check]]:
    if inspect.isclass(obj) and issubclass(obj, Check):
        return [obj]
    if inspect.ismodule(obj):
        return [
            v for v in vars(obj).values()
            if inspect.isclass(v) and issubclass(v, Check) and v.__module__ == obj.__name__ and v.name
        ]
    if isinstance(obj, (list, tuple)):
        return [c for item in obj for c in _checks_in(item)]
    raise TypeError(f"{obj!r} is not a dldoctor Check subclass, a module or a list of them")


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def discover(
    builtin: Iterable[str] | None = None, plugins: bool | None = None
) -> tuple[list[Registered], list[PluginFailure]]:
    """Load every check: built-ins, then entry points (unless turned off).

    Returns the registered checks, ordered by (stage, order, name), and the
    plugins that failed to load (reported, never fatal).
    """
    found: dict[str, Registered] = {}
    failures: list[PluginFailure] = []
    for reference in builtin_references() if builtin is None else builtin:
        for cls in _checks_in(_resolve(reference)):
            found[cls.name] = Registered(cls, "builtin")
    if plugins if plugins is not None else autoload_enabled():
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                classes = _checks_in(ep.load())
            except Exception as exc:  # a broken plugin must not break the run
                failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}"))
                continue
            for cls in classes:
                if cls.name in found:
                    failures.append(PluginFailure(ep.name, f"check name {cls.name!r} is already registered"))
                    continue
                dist = getattr(getattr(ep, "dist", None), "name", None) or ep.name
                found[cls.name] = Registered(cls, f"plugin:{dist}")
    ordered = sorted(found.values(), key=lambda r: (int(r.check.stage), r.check.order, r.check.name))
    return ordered, failures
