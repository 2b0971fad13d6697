"""Compare two JSON reports: which findings are new, fixed or changed, and which
measurements moved beyond their noise (``dldoctor diff OLD.json NEW.json``).

Pure: it reads two report dicts (``Diagnosis.to_dict()``) and returns plain data.

Findings are matched by ``(id, check, location)``. A new finding at warning or error, or
a finding whose severity went up, is worse.

A measurement present in both reports moved when the change exceeds its noise:

* both sides give their noise (one standard error): ``z = |new - old| / sqrt(noise_old² +
  noise_new²) > 2`` (a change that large arises by chance about 1 time in 20 between two
  runs of an unchanged model);
* otherwise a relative change of more than 10% of the old value (``RELATIVE_THRESHOLD``):
  without a noise estimate only a change well above rounding and ordinary drift counts;
* timings (``TIMING_UNITS``) must also change by a factor of 2 or more
  (``TIMING_FACTOR``), whatever their noise: a timing's standard error comes from the
  spread of the steps of one run, while a machine busy with other work shifts every step
  of a run together. The same model on the same 2-core machine, three runs in a row,
  measured 3,300, 5,400 and 6,200 samples/s, far outside each run's own error of ±320.

A moved measurement is worse or better according to its ``better`` (``higher`` or
``lower``); one without a direction is only reported as changed. A measurement that only
one report has is listed, never judged.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dldoctor.core.errors import UsageError
from dldoctor.core.measurement import format_value
from dldoctor.core.severity import Severity

#: A change beyond this many combined standard errors counts as moved.
Z_THRESHOLD = 2.0
#: Without noise on both sides: a change beyond this share of the old value counts as moved.
RELATIVE_THRESHOLD = 0.10
#: Timings must also change by at least this factor (see the module's docstring for why).
TIMING_FACTOR = 2.0
#: Units of timing measurements (a rate, a duration, a share of the step time).
TIMING_UNITS = frozenset({"s", "ms", "us", "µs", "samples/s", "steps/s", "batches/s", "items/s",
                          "share of step time"})


@dataclasses.dataclass(frozen=True)
class FindingChange:
    """One finding that differs between the reports.

    Attributes:
        kind: ``new`` (only in the new report), ``fixed`` (only in the old one) or
            ``changed`` (in both, at another severity).
        old_severity, new_severity: the severity on each side ("" where absent).
    """

    kind: str
    id: str
    check: str
    location: str
    old_severity: str
    new_severity: str
    title: str

    @property
    def worse(self) -> bool:
        if self.kind == "new":
            return _rank(self.new_severity) >= Severity.WARNING.rank
        if self.kind == "changed":
            return _rank(self.new_severity) > _rank(self.old_severity)
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "check": self.check, "location": self.location,
                "old_severity": self.old_severity or None, "new_severity": self.new_severity or None,
                "title": self.title, "worse": self.worse}


@dataclasses.dataclass(frozen=True)
class MeasurementChange:
    """One measurement, compared.

    Attributes:
        verdict: ``worse``, ``better``, ``changed`` (moved, no direction is better),
            ``within noise``, ``only in old`` or ``only in new``.
        z: the change in combined standard errors (None without noise on both sides).
        relative: the change as a share of the old value (None when the old value is 0
            or a side is missing).
        rule: how the change was judged, in words.
    """

    name: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    verdict: str
    z: float | None
    relative: float | None
    rule: str

    @property
    def worse(self) -> bool:
        return self.verdict == "worse"

    @property
    def unit(self) -> str:
        side = self.new if self.new is not None else self.old
        return str((side or {}).get("unit") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "unit": self.unit,
                "old": _value(self.old), "new": _value(self.new),
                "old_noise": (self.old or {}).get("noise"), "new_noise": (self.new or {}).get("noise"),
                "better": (self.new or self.old or {}).get("better"),
                "z": _finite(self.z), "relative": _finite(self.relative), "rule": self.rule, "worse": self.worse}


@dataclasses.dataclass(frozen=True)
class ReportDiff:
    """What changed from one report to the next."""

    old_target: str
    new_target: str
    findings: tuple[FindingChange, ...]
    measurements: tuple[MeasurementChange, ...]
    old_status: str = ""
    new_status: str = ""

    @property
    def worse(self) -> bool:
        """Something got worse: a new warning or error, a severity up, a measurement worse beyond noise."""
        return any(f.worse for f in self.findings) or any(m.worse for m in self.measurements)

    @property
    def regressions(self) -> list[str]:
        """What got worse, one line each."""
        lines = [f"{f.kind} {f.new_severity} {f.id} ({f.check}{', ' + f.location if f.location else ''})"
                 if f.kind == "new" else
                 f"{f.id} ({f.check}{', ' + f.location if f.location else ''}) went from {f.old_severity} to "
                 f"{f.new_severity}" for f in self.findings if f.worse]
        lines += [f"{m.name} is worse: {_shown(m.old)} -> {_shown(m.new)} ({m.rule})"
                  for m in self.measurements if m.worse]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"old": {"target": self.old_target, "status": self.old_status},
                "new": {"target": self.new_target, "status": self.new_status},
                "worse": self.worse, "regressions": self.regressions,
                "findings": [f.to_dict() for f in self.findings],
                "measurements": [m.to_dict() for m in self.measurements]}


def _rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return -1


def _value(side: Mapping[str, Any] | None) -> float | None:
    if side is None:
        return None
    try:
        return float(side["value"])
    except (KeyError, TypeError, ValueError):
        return None


def _shown(side: Mapping[str, Any] | None) -> str:
    value = _value(side)
    if side is None or value is None or not math.isfinite(value):
        return "—"
    return format_value(value, str(side.get("unit") or ""), _noise(side))


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _noise(side: Mapping[str, Any]) -> float | None:
    noise = side.get("noise")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
        return None
    return float(noise)


def _finding_key(f: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(f.get("id", "")), str(f.get("check", "")), str(f.get("location", "")))


def _findings_by_key(report: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """The report's findings by key; of two with one key, the more severe stands for both."""
    out: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for f in report.get("diagnoses") or ():
        key = _finding_key(f)
        if key not in out or _rank(str(f.get("severity", ""))) > _rank(str(out[key].get("severity", ""))):
            out[key] = f
    return out


def compare_findings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FindingChange]:
    """New, fixed and changed findings, worst first within each kind."""
    before, after = _findings_by_key(old), _findings_by_key(new)
    changes: list[FindingChange] = []
    for key, f in after.items():
        sev = str(f.get("severity", ""))
        if key not in before:
            changes.append(FindingChange("new", *key, "", sev, str(f.get("title", ""))))
        elif str(before[key].get("severity", "")) != sev:
            changes.append(FindingChange("changed", *key, str(before[key].get("severity", "")), sev,
                                         str(f.get("title", ""))))
    for key, f in before.items():
        if key not in after:
            changes.append(FindingChange("fixed", *key, str(f.get("severity", "")), "", str(f.get("title", ""))))
    order = {"new": 0, "changed": 1, "fixed": 2}
    return sorted(changes, key=lambda c: (order[c.kind], -max(_rank(c.new_severity), _rank(c.old_severity)), c.id))


def compare_measurement(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> MeasurementChange:
    """Judge one measurement present in both reports (see the module's docstring)."""
    a, b = _value(old), _value(new)
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return MeasurementChange(name, old, new, "changed" if a != b else "within noise", None, None,
                                 "a value is not a number: not judged")
    delta = b - a
    relative = delta / abs(a) if a != 0 else None
    na, nb = _noise(old), _noise(new)
    if na is not None and nb is not None:
        spread = math.hypot(na, nb)
        z = abs(delta) / spread if spread > 0 else (math.inf if delta else 0.0)
        moved = z > Z_THRESHOLD
        rule = f"z = {z:.1f} (limit {Z_THRESHOLD:g})" if math.isfinite(z) else "exact values differ"
    else:
        z = None
        moved = (relative is None and delta != 0) or (relative is not None and abs(relative) > RELATIVE_THRESHOLD)
        rule = (f"{relative:+.0%}, no noise known (limit ±{RELATIVE_THRESHOLD:.0%})" if relative is not None
                else "no noise known; the old value is 0")
    unit = str(new.get("unit") or old.get("unit") or "")
    if unit in TIMING_UNITS:
        low, high = sorted((abs(a), abs(b)))
        factor = high / low if low > 0 else (math.inf if high > 0 else 1.0)
        if moved and factor < TIMING_FACTOR:
            moved = False
        rule += f"; a timing: x{factor:.2f} (limit x{TIMING_FACTOR:g}, machine load moves whole runs)"
    if not moved:
        verdict = "within noise"
    else:
        better = new.get("better") or old.get("better")
        if better == "higher":
            verdict = "worse" if delta < 0 else "better"
        elif better == "lower":
            verdict = "worse" if delta > 0 else "better"
        else:
            verdict = "changed"
    return MeasurementChange(name, old, new, verdict, z, relative, rule)


def compare_measurements(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[MeasurementChange]:
    """Every measurement of either report, compared; worse first, then better, changed, within noise,
    then those only one side has."""
    before: Mapping[str, Any] = old.get("measurements") or {}
    after: Mapping[str, Any] = new.get("measurements") or {}
    out = [compare_measurement(name, before[name], after[name]) for name in before if name in after]
    out += [MeasurementChange(n, before[n], None, "only in old", None, None, "not in the new report: not judged")
            for n in before if n not in after]
    out += [MeasurementChange(n, None, after[n], "only in new", None, None, "not in the old report: not judged")
            for n in after if n not in before]
    order = {"worse": 0, "better": 1, "changed": 2, "within noise": 3, "only in old": 4, "only in new": 5}
    return sorted(out, key=lambda m: (order[m.verdict], m.name))


def diff_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> ReportDiff:
    """Compare two JSON reports (``Diagnosis.to_dict()``)."""
    return ReportDiff(str(old.get("target", "")), str(new.get("target", "")),
                      tuple(compare_findings(old, new)), tuple(compare_measurements(old, new)),
                      str(old.get("status", "")), str(new.get("status", "")))


def load_report(path: Path) -> dict[str, Any]:
    """A dldoctor JSON report read from ``path``.

    Raises:
        UsageError: the file is missing, unreadable, not JSON, or not a dldoctor report (exit 2).
    """
    hint = "Write one with: dldoctor run train.py --format json --output report.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})", hint=hint) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", hint=hint) from None
    if not isinstance(data, dict) or "dldoctor_version" not in data or not isinstance(data.get("diagnoses"), list):
        raise UsageError(f"{path}: not a dldoctor JSON report (no 'dldoctor_version' and 'diagnoses')", hint=hint)
    measurements = data.get("measurements", {})
    if not isinstance(measurements, dict) or not all(isinstance(m, dict) and "value" in m
                                                     for m in measurements.values()):
        raise UsageError(f"{path}: its 'measurements' is not an object of {{'value': ...}} entries", hint=hint)
    if not all(isinstance(f, dict) for f in data["diagnoses"]):
        raise UsageError(f"{path}: its 'diagnoses' is not a list of objects", hint=hint)
    return data
