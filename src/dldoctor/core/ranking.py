"""Ranking: order findings into the diagnosis. A pure, deterministic function.

1. Findings with the same ID (from different checks) merge into one: the strongest
   one's title and fixes, the highest confidence, the evidence of all.
2. A finding whose ID is a known consequence of another finding's ID (the
   catalogue's ``explains``, followed transitively) is marked ``explained_by`` that
   root cause, when the root cause is at least a warning and owns its entry: a
   finding carries its ID's ``explains`` links only when one of the checks that
   produced it owns the ID's catalogue entry. Built-in IDs are owned by the
   built-in checks (and any check not known as a plugin), a plugin's own ID by the
   plugin check(s) that declare it. So a plugin that borrows a built-in ID (or
   another plugin's) for its finding re-ranks nothing: its finding may still be
   explained by a root cause, but explains no other finding away.
   A data-level root (``too-little-data``, ``input-not-normalized``: a property of
   the data that may or may not matter for this model) explains a finding that an
   experiment confirmed only when it is confirmed by an experiment itself.
3. Order: findings that stand on their own first, then explained ones; within
   each, by severity (error first), then findings an experiment confirmed (a rerun
   with one change cured the symptom: ``metrics["confirmed_by"]`` names the change)
   before those read from a measurement alone, stage (earlier stages are closer to
   the root), confidence (higher first), then ID and check for a total order.

The input order never matters: the same set of findings gives the same output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage


def _stage_index(label: str) -> int:
    try:
        return int(Stage.parse(label)) if label else len(Stage) + 1
    except ValueError:
        return len(Stage) + 1


#: Properties of the data that are a root cause for this model only when an experiment says so.
DATA_LEVEL = frozenset({"too-little-data", "input-not-normalized"})


def confirmed(f: Finding) -> bool:
    """An experiment confirmed the finding: a rerun with one change cured what it explains."""
    return bool(f.metrics.get("confirmed_by"))


def _strength(f: Finding) -> tuple[Any, ...]:
    return (-f.severity.rank, not confirmed(f), _stage_index(f.stage), -f.confidence, f.id, f.check, f.title,
            f.evidence)


def _merge(group: list[Finding]) -> Finding:
    group = sorted(group, key=_strength)
    best = group[0]
    if len(group) == 1:
        return best
    evidence = list(best.evidence)
    metrics = dict(best.metrics)
    for other in group[1:]:
        evidence += [e for e in other.evidence if e not in evidence]
        for k, v in other.metrics.items():
            metrics.setdefault(k, v)
    checks = tuple(sorted({c for f in group for c in f.checks}))
    return dataclasses.replace(best, evidence=tuple(evidence), metrics=metrics, check=", ".join(checks),
                               checks=checks)


def _closure(explains: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """For each root-cause ID, every ID it explains directly or through others."""
    direct = {str(k): {str(v) for v in vs} for k, vs in explains.items()}
    closed: dict[str, frozenset[str]] = {}
    for root, explained in direct.items():
        seen: set[str] = set()
        todo = list(explained)
        while todo:
            nxt = todo.pop()
            if nxt in seen or nxt == root:
                continue
            seen.add(nxt)
            todo.extend(direct.get(nxt, ()))
        closed[root] = frozenset(seen)
    return closed


def default_explains() -> dict[str, tuple[str, ...]]:
    """The catalogue's ``explains`` links: built-in entries and the loaded plugins' entries."""
    from dldoctor.core.catalogue import all_entries

    return {k: tuple(str(i) for i in e.explains) for k, e in all_entries().items()}


def _owns_entry(f: Finding, plugin_checks: Mapping[str, Iterable[str]]) -> bool:
    """One of the checks behind ``f`` owns its ID's entry (see the module docstring, step 2)."""
    return not f.checks or any(c not in plugin_checks or f.id in plugin_checks[c] for c in f.checks)


def rank(findings: Iterable[Finding], explains: Mapping[str, Iterable[str]] | None = None,
         plugin_checks: Mapping[str, Iterable[str]] | None = None) -> tuple[Finding, ...]:
    """Merge, explain and order findings; return them with ``rank`` set (1 = most likely root cause).

    Args:
        findings: the findings of a run, in any order.
        explains: root-cause ID -> the IDs it explains (default: the catalogue's).
        plugin_checks: plugin check name -> the diagnosis IDs it declares itself
            (:func:`dldoctor.core.registry.plugin_ownership`); a plugin check's findings
            of other IDs explain nothing. Default: no plugin checks.
    """
    closure = _closure(default_explains() if explains is None else explains)
    plugin_checks = {k: frozenset(v) for k, v in (plugin_checks or {}).items()}
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.id, []).append(dataclasses.replace(f, rank=0, explained_by=None))
    merged = sorted((_merge(g) for g in groups.values()), key=_strength)

    explained: dict[str, str] = {}
    for f in merged:
        roots = [r for r in merged if r.id != f.id and f.id in closure.get(r.id, ())
                 and r.severity.at_least(Severity.WARNING) and _owns_entry(r, plugin_checks)
                 and not (r.id in DATA_LEVEL and confirmed(f) and not confirmed(r))]
        # A root that is itself explained by another root in the list defers to it.
        roots = [r for r in roots if not any(r.id in closure.get(o.id, ()) for o in roots if o.id != r.id)] or roots
        if roots:
            explained[f.id] = roots[0].id  # merged is sorted by strength, so roots[0] is the strongest

    standing = [f for f in merged if f.id not in explained]
    following = [f for f in merged if f.id in explained]
    ordered = standing + following
    return tuple(
        dataclasses.replace(f, rank=i, explained_by=explained.get(f.id)) for i, f in enumerate(ordered, start=1)
    )
