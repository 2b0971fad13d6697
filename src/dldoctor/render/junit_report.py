"""JUnit XML output: each check a test case, for CI systems that show test reports.

One ``<testsuite name="dldoctor">`` holds one ``<testcase>`` per check that was
registered for the run (class name ``dldoctor.<stage>``, name the check). A check
whose findings reach warning or above fails (``<failure>``, message the finding's
title, text its evidence and fixes); one that could not finish is an ``<error>``;
one skipped says why. A fatal finding (the entrypoint could not be loaded) is a
failing test case of its own, so a run that never got to its checks still fails.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dldoctor.core.diagnosis import CheckStatus, Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity


def _classname(stage: str) -> str:
    return f"dldoctor.{stage}" if stage and stage != "-" else "dldoctor"


def _failure_text(findings: list[Finding]) -> str:
    """The findings of one check as plain text: title, where, evidence, then what to try."""
    blocks = []
    for f in findings:
        lines = [f"[{f.severity.value}] {f.id}: {f.title}"]
        if f.file:
            lines.append(f"at {f.file}" + (f":{f.line}" if f.line else ""))
        elif f.location:
            lines.append(f"where: {f.location}")
        lines += [f"  {e}" for e in f.evidence]
        if f.fixes:
            lines.append("Try, in order:")
            lines += [f"  {i}. {fix}" for i, fix in enumerate(f.fixes, start=1)]
        lines.append(f"Details: dldoctor explain {f.id}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _failing(findings: tuple[Finding, ...]) -> dict[str, list[Finding]]:
    """Findings at warning or above, by each check behind them (a merged finding counts for each)."""
    by_check: dict[str, list[Finding]] = {}
    for f in findings:
        if f.severity.rank < Severity.WARNING.rank:
            continue
        for name in f.checks or (f.check,):
            by_check.setdefault(name, []).append(f)
    return by_check


def render(diagnosis: Diagnosis) -> str:
    failing = _failing(diagnosis.diagnoses)
    suite = ET.Element("testsuite", name="dldoctor")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seen: set[str] = set()
    total = 0.0
    for result in diagnosis.checks:
        seen.add(result.name)
        total += result.duration_s
        case = ET.SubElement(suite, "testcase", classname=_classname(result.stage), name=result.name,
                             time=f"{result.duration_s:.3f}")
        counts["tests"] += 1
        found = failing.get(result.name)
        if result.status is CheckStatus.ERRORED:  # could not finish: its findings say why
            counts["errors"] += 1
            error = ET.SubElement(case, "error", message=result.reason or "the check could not finish")
            error.text = _failure_text(found) if found else result.reason
        elif found:
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=found[0].title, type=found[0].id)
            failure.text = _failure_text(found)
        elif result.status is CheckStatus.SKIPPED:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=result.reason or "skipped")
        elif result.status is CheckStatus.FAILED:
            # failed on findings below warning only (info): nothing to fail on in CI
            pass
    # Findings whose check ran as no listed test case: a fatal entrypoint error (no check ran),
    # a plugin that failed to load, a coverage gap written by the runner.
    for name, found in failing.items():
        if name in seen:
            continue
        seen.add(name)
        stage = found[0].stage or "run"
        case = ET.SubElement(suite, "testcase", classname=_classname(stage), name=name or found[0].id, time="0.000")
        counts["tests"] += 1
        counts["failures"] += 1
        failure = ET.SubElement(case, "failure", message=found[0].title, type=found[0].id)
        failure.text = _failure_text(found)
    suite.set("tests", str(counts["tests"]))
    suite.set("failures", str(counts["failures"]))
    suite.set("errors", str(counts["errors"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total:.3f}")
    properties = ET.Element("properties")
    for key, value in (("target", diagnosis.target), ("status", diagnosis.status),
                       ("dldoctor_version", diagnosis.dldoctor_version), ("seed", str(diagnosis.seed)),
                       ("device", diagnosis.device), ("command", diagnosis.command)):
        ET.SubElement(properties, "property", name=key, value=value)
    suite.insert(0, properties)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
