"""SARIF 2.1.0 output: the findings as static-analysis results (GitHub code scanning and others).

One run of the tool ``dldoctor``: its rules are the diagnosis IDs that appear, each with
the catalogue's short title and explanation; each finding is a result with its level,
its message (title and evidence) and where it points: a file and line of the user's code
when known, else a logical location (the module path, ``loss``, ``data``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dldoctor.core.diagnosis import Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_uri(path: str) -> tuple[str, bool]:
    """``(uri, relative)``: relative to the working directory when the file lies under it
    (the checkout, for code scanning), else an absolute ``file://`` URI."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix(), True
    except ValueError:
        return resolved.as_uri(), False


def _rule(diagnosis_id: str) -> dict[str, Any]:
    from dldoctor.core import catalogue

    rule: dict[str, Any] = {"id": diagnosis_id, "name": diagnosis_id}
    try:
        entry = catalogue.get(diagnosis_id)
    except KeyError:  # an ID whose plugin is not loaded in this process
        rule["shortDescription"] = {"text": diagnosis_id}
        return rule
    rule["shortDescription"] = {"text": entry.title}
    rule["fullDescription"] = {"text": entry.explanation}
    rule["help"] = {"text": "Try, in order:\n" + "\n".join(f"{i}. {fix}" for i, fix in enumerate(entry.fixes, 1))
                    + f"\n\nDetails: dldoctor explain {diagnosis_id}"}
    rule["properties"] = {"family": str(getattr(entry.family, "value", entry.family))}
    return rule


def _location(finding: Finding) -> dict[str, Any] | None:
    if finding.file:
        uri, relative = artifact_uri(finding.file)
        artifact: dict[str, Any] = {"uri": uri}
        if relative:
            artifact["uriBaseId"] = "%SRCROOT%"
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if finding.line > 0:
            physical["region"] = {"startLine": finding.line}
        location: dict[str, Any] = {"physicalLocation": physical}
        if finding.location:
            location["logicalLocations"] = [{"fullyQualifiedName": finding.location}]
        return location
    if finding.location:
        return {"logicalLocations": [{"fullyQualifiedName": finding.location, "kind": "member"}]}
    return None


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    text = finding.title
    if finding.evidence:
        text += "\n" + "\n".join(finding.evidence)
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "properties": {"confidence": round(finding.confidence, 4), "rank": finding.rank, "check": finding.check,
                       "stage": finding.stage, "fixes": list(finding.fixes)},
    }
    if finding.explained_by:
        result["properties"]["explained_by"] = finding.explained_by
    location = _location(finding)
    if location is not None:
        result["locations"] = [location]
    return result


def to_sarif(diagnosis: Diagnosis) -> dict[str, Any]:
    """The SARIF log as plain data."""
    ids: list[str] = []
    for f in diagnosis.diagnoses:
        if f.id not in ids:
            ids.append(f.id)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "dldoctor", "version": diagnosis.dldoctor_version,
                            "semanticVersion": diagnosis.dldoctor_version,
                            "rules": [_rule(i) for i in ids]}},
        "results": [_result(f, ids.index(f.id)) for f in diagnosis.diagnoses],
        "invocations": [{"executionSuccessful": not any(f.id == "entrypoint-error" or f.metrics.get("fatal")
                                                         for f in diagnosis.diagnoses),
                         "commandLine": f"dldoctor {diagnosis.command} {diagnosis.target}"}],
        "properties": {"target": diagnosis.target, "status": diagnosis.status, "seed": diagnosis.seed,
                       "device": diagnosis.device},
    }
    if any(f.file and artifact_uri(f.file)[1] for f in diagnosis.diagnoses):
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": Path.cwd().resolve().as_uri() + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render(diagnosis: Diagnosis) -> str:
    return json.dumps(to_sarif(diagnosis), indent=2)
