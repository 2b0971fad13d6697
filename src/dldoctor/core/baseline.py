"""Known findings: a baseline file of today's findings, and the spec's ``accept`` reasons.

Both mark findings on a finished :class:`Diagnosis` without touching the checks:

* a *baseline* (``--write-baseline FILE`` / ``--baseline FILE``) records the findings at
  warning or above by fingerprint (ID, check, location; never the numbers, which jitter
  from run to run). On a later run a finding whose fingerprint is recorded is ``known``,
  any other is ``new``, and a recorded fingerprint whose check ran but found nothing is
  ``fixed``;
* ``accept`` in the spec (diagnosis ID -> reason) marks every finding of that ID as
  accepted, with the reason.

Known and accepted findings stay in the report but do not trip ``--fail-on``
(:meth:`Diagnosis.exit_code`). A fatal finding (``entrypoint-error``) is never waived.

Pure functions on plain data: no torch, no file format beyond JSON.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dldoctor.core.diagnosis import CheckStatus, Diagnosis
from dldoctor.core.errors import EntrypointError, UsageError
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity

#: The version of the baseline file's layout (``"dldoctor_baseline"`` in the file).
BASELINE_FORMAT = 1

#: IDs that cannot be baselined or accepted: the run itself did not work.
UNWAIVABLE = ("entrypoint-error", "check-incomplete")

Fingerprint = tuple[str, str, str]

_LINE_NUMBER = re.compile(r":\d+\b")


def normal_location(location: str) -> str:
    """``location`` without line numbers (``train.py:42 in main`` -> ``train.py in main``):
    an edit above the line must not turn a known finding into a new one."""
    return _LINE_NUMBER.sub("", location).strip()


def fingerprint(finding: Finding) -> Fingerprint:
    """What identifies a finding from one run to the next: its ID, its check(s) and
    where it is, never its numbers or its wording."""
    return (finding.id, finding.check, normal_location(finding.location))


def recordable(finding: Finding) -> bool:
    """Whether a finding goes into a baseline: warning or above, and not a run that failed."""
    return finding.severity.rank >= Severity.WARNING.rank and finding.id not in UNWAIVABLE \
        and not finding.metrics.get("fatal")


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The findings a baseline file records, by fingerprint."""

    entries: tuple[Fingerprint, ...]
    dldoctor_version: str = ""
    target: str = ""
    command: str = ""

    @property
    def fingerprints(self) -> frozenset[Fingerprint]:
        return frozenset(self.entries)


def baseline_of(diagnosis: Diagnosis) -> Baseline:
    """The baseline that records ``diagnosis``'s findings at warning or above."""
    entries = sorted({fingerprint(f) for f in diagnosis.diagnoses if recordable(f)})
    return Baseline(tuple(entries), diagnosis.dldoctor_version, diagnosis.target, diagnosis.command)


def baseline_text(diagnosis: Diagnosis) -> str:
    """The baseline file for ``diagnosis``: small, sorted JSON that diffs well in review."""
    titles = {fingerprint(f): f.title for f in diagnosis.diagnoses if recordable(f)}
    baseline = baseline_of(diagnosis)
    data = {
        "dldoctor_baseline": BASELINE_FORMAT,
        "dldoctor_version": baseline.dldoctor_version,
        "target": baseline.target,
        "command": baseline.command,
        "findings": [{"id": i, "check": c, "location": loc, "title": titles.get((i, c, loc), "")}
                     for i, c, loc in baseline.entries],
    }
    return json.dumps(data, indent=2) + "\n"


def parse_baseline(data: Any, source: str) -> Baseline:
    """A :class:`Baseline` from a baseline file's JSON data.

    Raises:
        UsageError: the data is not a dldoctor baseline (exit 2), naming what is wrong.
    """
    hint = "Write one with: dldoctor run TARGET --write-baseline FILE"
    if not isinstance(data, Mapping) or "dldoctor_baseline" not in data:
        raise UsageError(f"{source} is not a dldoctor baseline file (no \"dldoctor_baseline\" key)", hint=hint)
    if data["dldoctor_baseline"] != BASELINE_FORMAT:
        raise UsageError(f"{source} has baseline format {data['dldoctor_baseline']!r}; this dldoctor reads "
                         f"format {BASELINE_FORMAT}", hint=hint)
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise UsageError(f"{source}: \"findings\" must be a list", hint=hint)
    entries: list[Fingerprint] = []
    for n, item in enumerate(findings):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) \
                or not isinstance(item.get("check", ""), str) or not isinstance(item.get("location", ""), str):
            raise UsageError(f"{source}: findings[{n}] must be an object with string \"id\", \"check\" and "
                             "\"location\"", hint=hint)
        entries.append((item["id"], item.get("check", ""), normal_location(item.get("location", ""))))
    return Baseline(tuple(entries), str(data.get("dldoctor_version", "")), str(data.get("target", "")),
                    str(data.get("command", "")))


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file.

    Raises:
        UsageError: the file is missing, unreadable, not JSON or not a baseline (exit 2).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"baseline file {path} does not exist",
                         hint="Write one with: dldoctor run TARGET --write-baseline FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read baseline file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"baseline file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return parse_baseline(data, str(path))


def write_baseline(diagnosis: Diagnosis, path: Path) -> None:
    """Write ``diagnosis``'s baseline to ``path``.

    Raises:
        UsageError: the file cannot be written (exit 2).
    """
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(baseline_text(diagnosis), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write baseline file {path}: {exc.strerror or exc}") from None


def _checks_that_ran(diagnosis: Diagnosis) -> set[str]:
    return {c.name for c in diagnosis.checks if c.status in (CheckStatus.PASSED, CheckStatus.FAILED)}


def apply_baseline(diagnosis: Diagnosis, baseline: Baseline, file: str) -> Diagnosis:
    """``diagnosis`` with each finding at warning or above marked ``known`` or ``new``, and
    the top-level ``baseline`` summary: counts, and the recorded findings now fixed.

    A recorded finding counts as fixed only when every check behind it ran this time
    (passed or failed): one a narrower run (``probe``, ``--select``) did not look for
    is neither known nor fixed.
    """
    recorded = baseline.fingerprints
    marked: list[Finding] = []
    seen: set[Fingerprint] = set()
    for f in diagnosis.diagnoses:
        if not recordable(f):
            marked.append(f)
            continue
        key = fingerprint(f)
        seen.add(key)
        marked.append(dataclasses.replace(f, baseline="known" if key in recorded else "new"))
    ran = _checks_that_ran(diagnosis)
    fixed = [{"id": i, "check": c, "location": loc} for i, c, loc in sorted(recorded - seen)
             if c and all(name in ran for name in c.split(", "))]
    summary = {"file": file, "known": sum(f.baseline == "known" for f in marked),
               "new": sum(f.baseline == "new" for f in marked), "fixed": fixed}
    return dataclasses.replace(diagnosis, diagnoses=tuple(marked), baseline=summary)


def check_accept(accept: Any, known: Iterable[str] | None = None) -> dict[str, str]:
    """Validate the spec's ``accept`` value: a dict of diagnosis ID -> non-empty reason.

    ``known`` is the set of valid IDs (the catalogue's, with the loaded plugins'); None
    looks them up.

    Raises:
        EntrypointError: naming the bad entry and showing the line to write (exit 2).
    """
    example = '"accept": {"class-imbalance": "labels are 1:20 by design"},'
    if not isinstance(accept, Mapping):
        raise EntrypointError(f"spec key 'accept' must be a dict of diagnosis ID -> reason, got "
                              f"{type(accept).__name__}", hint=example)
    if known is None:
        from dldoctor.core import catalogue

        if not all(isinstance(k, str) and catalogue.known(k) for k in accept):
            from dldoctor.core.registry import discover

            discover()  # plugins add their IDs to the catalogue when they load
        known = catalogue.all_entries()
    ids = set(known)
    out: dict[str, str] = {}
    for key, reason in accept.items():
        if not isinstance(key, str) or key not in ids:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(ids), n=1)
            raise EntrypointError(f"spec key 'accept' names {key!r}, which is not a diagnosis ID"
                                  + (f" (did you mean {close[0]!r}?)" if close else ""),
                                  hint="dldoctor checks lists the IDs; dldoctor explain ID describes one")
        if key in UNWAIVABLE:
            raise EntrypointError(f"spec key 'accept' cannot accept {key!r}: it says the run itself did not work",
                                  hint="--allow-incomplete lets a run with incomplete checks exit 0"
                                  if key == "check-incomplete" else "")
        if not isinstance(reason, str) or not reason.strip():
            raise EntrypointError(f"spec key 'accept': the reason for {key!r} must be a non-empty string, got "
                                  f"{reason!r}", hint=example)
        out[key] = reason.strip()
    return out


def apply_accept(diagnosis: Diagnosis, accept: Mapping[str, str]) -> Diagnosis:
    """``diagnosis`` with every finding whose ID the spec accepts marked with the reason."""
    if not accept:
        return diagnosis
    marked = tuple(dataclasses.replace(f, accepted=accept[f.id])
                   if f.id in accept and f.id not in UNWAIVABLE and not f.metrics.get("fatal") else f
                   for f in diagnosis.diagnoses)
    return dataclasses.replace(diagnosis, diagnoses=marked)


def mark_text(finding: Finding) -> str:
    """How a report marks a finding: ``accepted: REASON``, ``known`` or ``new`` ("" when none)."""
    if finding.accepted is not None:
        return f"accepted: {finding.accepted}"
    return finding.baseline or ""


def summary_line(diagnosis: Diagnosis) -> str:
    """One line on the baseline comparison ("" without ``--baseline``)."""
    summary = diagnosis.baseline
    if summary is None:
        return ""
    fixed = list(summary.get("fixed", ()))
    line = (f"baseline {summary.get('file', '')}: {summary.get('known', 0)} known, {summary.get('new', 0)} new, "
            f"{len(fixed)} fixed")
    if fixed:
        line += " (" + "; ".join(f"{x.get('id')} at {x.get('location') or x.get('check')}" for x in fixed) + ")"
    return line
