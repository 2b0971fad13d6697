"""Where checks come from: one door for built-in and third-party checks alike.

Built-in checks are the :class:`Check` subclasses found in the modules of the
``dldoctor.checks`` package (one check per file, so adding a check touches one
folder). They are loaded by the same function as a third-party package's checks,
declared in its entry-point group ``dldoctor.checks``:

    [project.entry-points."dldoctor.checks"]
    my-check = "my_package.checks:MyCheck"

An entry may name a :class:`Check` subclass, or a module/list holding several.
Setting ``DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party loading off.

A plugin's checks may declare their own diagnosis IDs (``catalogue``) and config
sections (``config``); loading the plugin registers them with the catalogue and the
config schema. An entry point whose module does not import, that names no check,
whose check is malformed, or whose IDs, check names or config sections collide with
built-in ones or another entry point's (with a different declaration) is not loaded
at all: it becomes a :class:`PluginFailure`, which ``dldoctor checks`` reports with
exit 2 and a diagnosing run reports as an errored check (``check-incomplete``).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from dldoctor.core.check import Check

ENTRY_POINT_GROUP = "dldoctor.checks"
AUTOLOAD_ENV = "DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_PACKAGE = "dldoctor.checks"

if TYPE_CHECKING:
    from dldoctor.core.finding import Finding


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
    """A third-party entry point that could not be loaded.

    Attributes:
        name: the entry point's name.
        error: why, in one line.
        reference: what it points to (``package.module:Attr``), or "".
        dist: the distribution that declares it, or "".
    """

    name: str
    error: str
    reference: str = ""
    dist: str = ""

    def message(self) -> str:
        """``plugin entry point 'x' (= pkg.mod:Check, from dist) failed to load: why``."""
        where = ", ".join(filter(None, (f"= {self.reference}" if self.reference else "",
                                        f"from {self.dist}" if self.dist else "")))
        return f"plugin entry point {self.name!r}{f' ({where})' if where else ''} failed to load: {self.error}"


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


@dataclasses.dataclass
class _Declared:
    """What the loaded plugins declared so far: IDs, config sections, check names."""

    entries: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)  # id -> (info, entry point)
    id_owners: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # id -> check names
    families: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> "plugin <dist>"
    sections: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)  # section -> (decl, entry point)
    defaults: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # check name -> entry point


def _admit(classes: list[type[Check]], ep_name: str, dist: str, taken: _Declared,
           builtin_names: Iterable[str]) -> str | None:
    """Why the classes of entry point ``ep_name`` cannot be registered beside what is
    already declared, or None (then ``taken`` is updated with their declarations)."""
    from dldoctor.core.config import builtin_sections
    from dldoctor.core.config_schema import parse_declaration

    if not classes:
        return "it names no dldoctor Check subclass"
    builtin_names = set(builtin_names)
    sections_builtin = builtin_sections()
    new = copy.deepcopy(taken)  # committed only when every class fits
    for cls in classes:
        if cls.name in builtin_names:
            return f"check name {cls.name!r} ({cls.__qualname__}) is already registered by a built-in check"
        if cls.name in new.names:
            return f"check name {cls.name!r} ({cls.__qualname__}) is already registered by plugin entry point " \
                   f"{new.names[cls.name]!r}"
        new.names[cls.name] = ep_name
        for diagnosis_id, info in cls.catalogue.items():
            if diagnosis_id in new.entries and new.entries[diagnosis_id][0] != info:
                other = new.entries[diagnosis_id][1]
                whose = "another check of this entry point" if other == ep_name else f"plugin entry point {other!r}"
                return (f"diagnosis ID {diagnosis_id!r} of check {cls.name!r} is already declared by {whose} "
                        "with a different entry")
            new.entries.setdefault(diagnosis_id, (info, ep_name))
            new.families.setdefault(diagnosis_id, f"plugin {dist}")
            new.id_owners.setdefault(diagnosis_id, set()).add(cls.name)
        defaults, rules = parse_declaration(cls.config)
        for section in defaults:
            if section in sections_builtin:
                return f"config section {section!r} of check {cls.name!r} is a built-in section (choose another name)"
            if section in new.sections and new.sections[section][0] != cls.config[section]:
                other = new.sections[section][1]
                whose = "another check of this entry point" if other == ep_name else f"plugin entry point {other!r}"
                return (f"config section {section!r} of check {cls.name!r} is already declared by {whose} "
                        "with different keys")
            new.sections.setdefault(section, (cls.config[section], ep_name))
            new.defaults[section] = defaults[section]
        new.rules.update(rules)
    for field in dataclasses.fields(taken):
        setattr(taken, field.name, getattr(new, field.name))
    return None


def _publish(declared: _Declared) -> None:
    """Make the loaded plugins' IDs and config sections known to the catalogue and config."""
    from dldoctor.core import catalogue
    from dldoctor.core.config import set_plugin_defaults
    from dldoctor.core.config_schema import set_plugin_rules

    catalogue.set_plugin_entries(
        {k: info.entry(k, declared.families[k]) for k, (info, _) in declared.entries.items()},
        declared.id_owners)
    set_plugin_rules(declared.rules)
    set_plugin_defaults(declared.defaults)


def load_plugins(
    enabled: bool | None = None, builtin_names: Iterable[str] = ()
) -> tuple[list[Registered], list[PluginFailure]]:
    """Load the third-party checks (entry points of ``dldoctor.checks``), sorted by entry point.

    Registers their diagnosis IDs with the catalogue and their config sections with
    the config (replacing what an earlier call registered). An entry point that cannot
    be loaded is left out entirely and reported as a :class:`PluginFailure`.

    Args:
        enabled: load them (default: unless ``DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD`` is set).
        builtin_names: names of the built-in checks (a plugin check may not reuse one).
    """
    registered: list[Registered] = []
    failures: list[PluginFailure] = []
    declared = _Declared()
    if enabled if enabled is not None else autoload_enabled():
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
            dist = getattr(getattr(ep, "dist", None), "name", None) or ""
            try:
                classes = _checks_in(ep.load())
                why = _admit(classes, ep.name, dist or ep.name, declared, builtin_names)
            except Exception as exc:  # a broken plugin must not break the run
                why = f"{type(exc).__name__}: {exc}"
            if why is not None:
                failures.append(PluginFailure(ep.name, why, ep.value, dist))
                continue
            registered += [Registered(cls, f"plugin:{dist or ep.name}") for cls in classes]
    _publish(declared)
    return registered, failures


def discover(
    builtin: Iterable[str] | None = None, plugins: bool | None = None
) -> tuple[list[Registered], list[PluginFailure]]:
    """Load every check: built-ins, then entry points (unless turned off).

    Returns the registered checks in run order (see :func:`run_order`), and the
    plugins that failed to load (reported, never fatal to a run).

    Raises:
        TypeError: a built-in check's ``after`` names an unknown check, a check of a
            later stage, or makes a cycle. (A plugin's such check is a load failure.)
    """
    found: dict[str, Registered] = {}
    for reference in builtin_references() if builtin is None else builtin:
        for cls in _checks_in(_resolve(reference)):
            found[cls.name] = Registered(cls, "builtin")
    extra, failures = load_plugins(plugins, builtin_names=found)
    found.update({r.check.name: r for r in extra})
    while True:
        try:
            ordered = run_order([r.check for r in found.values()])
            break
        except DependencyError as exc:
            culprit = found[exc.check]
            if culprit.source == "builtin":
                raise TypeError(str(exc)) from None
            plugin = culprit.source.removeprefix("plugin:")
            failures.append(PluginFailure(plugin, str(exc)))
            found = {n: r for n, r in found.items() if r.source != culprit.source}
    return [found[c.name] for c in ordered], failures


class DependencyError(Exception):
    """A check's ``after`` cannot be met: ``check`` names the check to blame."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


def run_order(checks: Iterable[type[Check]], strict: bool = True) -> list[type[Check]]:
    """The checks in the order they run: by stage, and within a stage every check after the
    ones it names in ``after``, otherwise by (``order``, name).

    A dependency is an edge, not a position: sorting by ``order`` alone let a check
    read another's results only because its number was higher. Here the earliest
    ready check by (stage, order, name) runs next (Kahn's algorithm), so checks with
    no dependencies keep the order they always had.

    With ``strict`` off (a run of some checks only), names of checks not among
    ``checks`` are left out instead of raising.

    Raises:
        DependencyError: ``after`` names a check that is not registered or belongs to a
            later stage, or the dependencies make a cycle.
    """
    import heapq

    checks = list(checks)
    by_name = {c.name: c for c in checks}
    for c in checks:
        for name in c.after:
            other = by_name.get(name)
            if other is None and not strict:
                continue
            if other is None:
                raise DependencyError(c.name, f"check {c.name!r} runs after {name!r}, which is not a registered check")
            if int(other.stage) > int(c.stage):
                raise DependencyError(c.name, f"check {c.name!r} ({c.stage.label} stage) runs after {name!r}, "
                                              f"which belongs to the later {other.stage.label} stage")
    waiting = {c.name: {n for n in c.after if n in by_name} for c in checks}
    dependents: dict[str, list[str]] = {}
    for c in checks:
        for name in waiting[c.name]:
            dependents.setdefault(name, []).append(c.name)

    def key(c: type[Check]) -> tuple[int, int, str]:
        return int(c.stage), c.order, c.name

    ready = [key(c) for c in checks if not waiting[c.name]]
    heapq.heapify(ready)
    ordered: list[type[Check]] = []
    while ready:
        name = heapq.heappop(ready)[2]
        ordered.append(by_name[name])
        for dependent in dependents.get(name, ()):
            waiting[dependent].discard(name)
            if not waiting[dependent]:
                heapq.heappush(ready, key(by_name[dependent]))
    if len(ordered) < len(checks):
        stuck = sorted(n for n, deps in waiting.items() if deps)
        raise DependencyError(stuck[0], f"the 'after' declarations of checks {stuck} make a cycle")
    return ordered


def plugin_ownership(registered: Iterable[Registered]) -> dict[str, frozenset[str]]:
    """Plugin check name -> the diagnosis IDs it declares itself, for :func:`dldoctor.core.ranking.rank`."""
    return {r.check.name: frozenset(r.check.catalogue) for r in registered if r.source != "builtin"}


def failure_finding(failure: PluginFailure) -> Finding:
    """The ``check-incomplete`` finding of a plugin that failed to load: its checks did not run."""
    from dldoctor.core import catalogue

    return catalogue.coverage_gap(
        f"plugin entry point {failure.name!r} failed to load: {failure.error}", check=f"plugin:{failure.name}",
        evidence=(failure.message(), "not checked: whatever the plugin's checks look for"),
        fixes=(f"Fix or uninstall the plugin{f' {failure.dist}' if failure.dist else ''}; `dldoctor checks` "
               "shows why it does not load.",
               f"Or run without third-party checks: {AUTOLOAD_ENV}=1."),
        location=f"plugin:{failure.name}")
