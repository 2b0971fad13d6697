"""Ranking: order findings into the diagnosis. A pure, deterministic function.

1. Findings with the same ID (from different checks) merge into one: the strongest
   one's title and fixes, the highest confidence, the evidence of all.
2. A finding whose ID is a known consequence of another finding's ID (the
   catalogue's ``explains``, followed transitively) is marked ``explained_by`` that
   root cause, when the root cause is at least a warning.
3. Order: findings that stand on their own first, then explained ones; within
   each, by severity (error first), stage (earlier stages are closer to the root),
   confidence (higher first), then ID and check for a total order.

The input order never matters: the same set of findings gives the same output.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage


def _stage_index(label: str) -> int:
    try:
        return int(Stage.parse(label)) if label else len(Stage) + 1
    except ValueError:
        return len(Stage) + 1


def _strength(f: Finding) -> tuple:
    return (-f.severity.rank, _stage_index(f.stage), -f.confidence, f.id, f.check, f.title, f.evidence)


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
    checks = sorted({f.check for f in group if f.check})
    return dataclasses.replace(best, evidence=tuple(evidence), metrics=metrics, check=", ".join(checks))


def _closure(explains: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """For each root-cause ID, every ID it explains directly or through others."""
    direct = {str(k): {str(v) for v in vs} for k, vs in explains.items()}
    closed: dict[str, frozenset[str]] = {}
    for root in direct:
        seen: set[str] = set()
        todo = list(direct[root])
        while todo:
            nxt = todo.pop()
            if nxt in seen or nxt == root:
                continue
            seen.add(nxt)
            todo.extend(direct.get(nxt, ()))
        closed[root] = frozenset(seen)
    return closed


def default_explains() -> dict[str, tuple[str, ...]]:
    from dldoctor.core.catalogue import CATALOGUE

    return {k: tuple(str(i.value) for i in e.explains) for k, e in CATALOGUE.items()}


def rank(findings: Iterable[Finding], explains: Mapping[str, Iterable[str]] | None = None) -> tuple[Finding, ...]:
    """Merge, explain and order findings; return them with ``rank`` set (1 = most likely root cause)."""
    closure = _closure(default_explains() if explains is None else explains)
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.id, []).append(dataclasses.replace(f, rank=0, explained_by=None))
    merged = sorted((_merge(g) for g in groups.values()), key=_strength)

    explained: dict[str, str] = {}
    for f in merged:
        roots = [r for r in merged if r.id != f.id and f.id in closure.get(r.id, ())
                 and r.severity.at_least(Severity.WARNING)]
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
