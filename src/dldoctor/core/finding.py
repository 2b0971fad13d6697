"""Findings: what a check concluded, as plain, frozen, JSON-round-trippable data."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dldoctor.core.severity import Severity

Number = int | float | str | bool | None


def _plain(value: Any) -> Number:
    """Coerce a metric value to a JSON-safe plain type (numpy/torch scalars included)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(as_float) and as_float == int(as_float) and isinstance(value, int):
        return int(as_float)
    return as_float if math.isfinite(as_float) else str(as_float)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One conclusion of one check.

    Attributes:
        id: a diagnosis ID from the catalogue (``dldoctor explain ID``).
        severity: info, warning or error.
        confidence: 0..1, how sure the measurement makes us.
        title: one line, specific to this case (e.g. names the module).
        check: name of the check that produced it.
        evidence: the observed numbers, in words, most telling first.
        fixes: things to try, in order.
        metrics: the evidence as plain numbers, for machines.
        location: where it happened (a module path, ``loss``, ``data``), or "".
        stage: the stage of the check that produced it (set by the pipeline).
        explained_by: the ID of a higher-ranked root cause that explains this
            finding, set by ranking; None when it stands on its own.
        rank: 1-based position in the ranked diagnosis, set by ranking; 0 before.
        checks: the checks behind it, one by one: ``(check,)``, or every check whose
            findings of this ID ranking merged (``check`` then names them all, for
            people and the JSON report). Derived from ``check`` unless given with it.
        file: the user's source file the problem points at (a path as found; "" when
            unknown). Set after the checks ran (:mod:`dldoctor.core.locate`).
        line: the 1-based line in ``file`` (0 when unknown).
        baseline: with ``--baseline``: ``"known"`` (recorded in the baseline file) or
            ``"new"``; None otherwise (:mod:`dldoctor.core.baseline`).
        accepted: the reason the spec's ``accept`` gives for this ID, or None.
    """

    id: str
    severity: Severity
    confidence: float
    title: str
    check: str = ""
    evidence: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    metrics: Mapping[str, Number] = dataclasses.field(default_factory=dict)
    location: str = ""
    stage: str = ""
    explained_by: str | None = None
    rank: int = 0
    checks: tuple[str, ...] = ()
    file: str = ""
    line: int = 0
    baseline: str | None = None
    accepted: str | None = None

    def __post_init__(self) -> None:
        if ", ".join(self.checks) != self.check:  # not given, or stale after a replace(check=...)
            object.__setattr__(self, "checks", (self.check,) if self.check else ())
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "confidence", float(min(1.0, max(0.0, self.confidence))))
        object.__setattr__(self, "evidence", tuple(str(e) for e in self.evidence))
        object.__setattr__(self, "fixes", tuple(str(f) for f in self.fixes))
        object.__setattr__(self, "metrics", {str(k): _plain(v) for k, v in dict(self.metrics).items()})
        object.__setattr__(self, "file", str(self.file or ""))
        object.__setattr__(self, "line", int(self.line or 0) if self.file else 0)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "rank": self.rank,
            "severity": self.severity.value,
            "confidence": round(self.confidence, 4),
            "title": self.title,
            "check": self.check,
            "evidence": list(self.evidence),
            "fixes": list(self.fixes),
            "metrics": dict(self.metrics),
            "location": self.location,
            "stage": self.stage,
            "explained_by": self.explained_by,
        }
        if self.file:  # optional keys: written only when the source location is known
            data["file"] = self.file
            if self.line > 0:
                data["line"] = self.line
        if self.baseline is not None:  # optional: only with --baseline
            data["baseline"] = self.baseline
        if self.accepted is not None:  # optional: only when the spec accepts this ID
            data["accepted"] = self.accepted
        return data

    @property
    def waived(self) -> bool:
        """Known from the baseline or accepted by the spec: reported, but it does not trip
        ``--fail-on``."""
        return self.baseline == "known" or self.accepted is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["evidence"] = tuple(kwargs.get("evidence", ()))
        kwargs["fixes"] = tuple(kwargs.get("fixes", ()))
        return cls(**kwargs)
