"""dldoctor in a test suite: :func:`assert_healthy`, and a pytest plugin.

    from dldoctor.testing import assert_healthy

    def test_training_is_wired_right():
        assert_healthy("train.py", stages="run")

The pytest plugin (:mod:`dldoctor.testing.pytest_plugin`, registered as ``dldoctor``)
adds ``pytest --dldoctor train.py`` (one test per check) and the ``dldoctor`` fixture.

Importing this module does not import torch; a diagnosis does, when it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.core.finding import Finding

__all__ = ["Doctor", "assert_healthy", "describe", "diagnose", "failing_findings"]


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(part.strip() for item in items for part in str(item).split(",") if part.strip())


def diagnose(target: str | Path | None = None, *, stages: str | Iterable[str] | None = None,
             select: str | Iterable[str] | None = None, ignore: str | Iterable[str] | None = None,
             baseline: str | Path | None = None, **options: Any) -> Diagnosis:
    """Run dldoctor on ``target`` and return the ranked :class:`~dldoctor.core.diagnosis.Diagnosis`.

    ``stages``, ``select`` and ``ignore`` take names as the command line does (a list, or
    one comma-separated string: ``stages="run,overfit"``); unknown names raise
    :class:`~dldoctor.core.errors.DldoctorError`. ``baseline`` is a baseline file
    (``dldoctor run --write-baseline``): the findings it records are marked known. Other
    keyword options are those of :func:`dldoctor.diagnose` (``spec``, ``profile``,
    ``seed``, ``device``, ...).
    """
    import dldoctor
    from dldoctor.core.runner import validate_names

    chosen_select, chosen_ignore = _names(select), _names(ignore)
    validate_names(chosen_select, "select")
    validate_names(chosen_ignore, "ignore")
    known = None
    if baseline is not None:
        from dldoctor.core.baseline import load_baseline

        known = load_baseline(Path(baseline))
    diagnosis: Diagnosis = dldoctor.diagnose(target, stages=_names(stages) or None, select=chosen_select,
                                             ignore=chosen_ignore, **options)
    if known is not None and not any(f.id == "entrypoint-error" for f in diagnosis.diagnoses):
        from dldoctor.core.baseline import apply_baseline

        diagnosis = apply_baseline(diagnosis, known, str(baseline))
    return diagnosis


def failing_findings(diagnosis: Diagnosis, fail_on: str = "warning", check: str | None = None) -> list[Finding]:
    """The findings that make ``diagnosis`` fail at ``fail_on`` (``error``, ``warning`` or
    ``never``): fatal ones always, others at or above ``fail_on`` unless known from a
    baseline or accepted by the spec. ``check`` keeps only the findings of that check."""
    from dldoctor.core.severity import FailOn

    level = FailOn(fail_on)
    out = []
    for f in diagnosis.diagnoses:
        if check is not None and check not in f.checks:
            continue
        fatal = f.id == "entrypoint-error" or bool(f.metrics.get("fatal"))
        if fatal or (f.id != "check-incomplete" and not f.waived and level.trips(f.severity)):
            out.append(f)
    return out


def describe(findings: Sequence[Finding], target: str = "") -> str:
    """The findings as plain text for a failed test: title, evidence, fixes in order."""
    where = f" in {target}" if target else ""
    lines = [f"dldoctor found {len(findings)} problem{'s' if len(findings) != 1 else ''}{where}:"]
    for f in findings:
        at = f" at {f.location}" if f.location else ""
        lines.append("")
        lines.append(f"[{f.severity.value}] {f.id} ({f.check}{at}): {f.title}")
        for e in f.evidence:
            if "\n" in e:
                lines += ["    " + row for row in e.splitlines()]
            else:
                lines.append(f"  - {e}")
        if f.fixes:
            lines.append("  try, in order:")
            lines += [f"    {i}. {fix}" for i, fix in enumerate(f.fixes, start=1)]
        lines.append(f"  details: dldoctor explain {f.id}")
    return "\n".join(lines)


def assert_healthy(target: str | Path | None = None, *, stages: str | Iterable[str] | None = None,
                   ignore: str | Iterable[str] | None = None, fail_on: str = "warning",
                   allow_incomplete: bool = False, **options: Any) -> Diagnosis:
    """Diagnose ``target`` and raise ``AssertionError`` naming every finding at or above
    ``fail_on`` (with its evidence and fixes), or when the target could not be loaded, or
    (unless ``allow_incomplete``) when a check could not finish. Returns the diagnosis.

    Other keyword options are those of :func:`diagnose` (``select``, ``baseline``,
    ``profile``, ``seed``, ``device``, ``spec``, ...).
    """
    diagnosis = diagnose(target, stages=stages, ignore=ignore, **options)
    failing = failing_findings(diagnosis, fail_on)
    if failing:
        raise AssertionError(describe(failing, diagnosis.target))
    if diagnosis.incomplete and not allow_incomplete:
        gaps = [f for f in diagnosis.diagnoses if f.id == "check-incomplete"]
        detail = describe(gaps, diagnosis.target) if gaps else "every selected check was skipped"
        raise AssertionError(f"dldoctor could not check everything (allow_incomplete=True accepts that):\n{detail}")
    return diagnosis


class Doctor:
    """What the ``dldoctor`` pytest fixture gives a test: :meth:`diagnose` and
    :meth:`assert_healthy` with the options set on it by default."""

    def __init__(self, **defaults: Any):
        self.defaults = defaults

    def diagnose(self, target: str | Path | None = None, **options: Any) -> Diagnosis:
        return diagnose(target, **{**self.defaults, **options})

    def assert_healthy(self, target: str | Path | None = None, **options: Any) -> Diagnosis:
        return assert_healthy(target, **{**self.defaults, **options})
