"""The JSON report's schema (src/dldoctor/schema/report.schema.json): shipped, valid, and strict.

Every zoo case validates its own report against it (tests/report_contract.py, called from
tests/test_examples.py); these tests check the schema itself on hand-built reports.
"""

from __future__ import annotations

import copy
import sys

import pytest

from dldoctor.core.diagnosis import CheckResult, CheckStatus, Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from tests.conftest import REPO
from tests.report_contract import assert_report_contract, schema_errors


def small_diagnosis(**changes) -> Diagnosis:
    finding = Finding(id="lr-too-high", severity=Severity.ERROR, confidence=0.91, title="The loss diverges",
                      check="overfit-batch", evidence=("loss 2.3 -> nan in 12 steps",), fixes=("Lower the lr.",),
                      metrics={"lr": 0.5, "steps": 12, "diverged": True, "final": float("nan"), "note": None},
                      location="optimizer", stage="overfit", rank=1)
    symptom = Finding(id="numerical-instability", severity=Severity.WARNING, confidence=0.5, title="NaN loss",
                      check="numerics", location="loss", stage="run", rank=2, explained_by="lr-too-high")
    checks = (CheckResult("overfit-batch", "overfit", CheckStatus.FAILED, 1.25),
              CheckResult("reference", "compare", CheckStatus.SKIPPED, 0.0, "the spec has no reference"))
    fields = dict(dldoctor_version="0.1.0", target="train.py", diagnoses=(finding, symptom), checks=checks,
                  seed=3, device="cpu", duration_s=2.5, command="run", profile="quick",
                  reports={"watched_loop": {"steps_watched": 40, "stopped": "budget", "script": "train.py"}})
    return Diagnosis(**{**fields, **changes})


def test_the_schema_is_valid_draft_2020_12_and_ships_with_the_package():
    from jsonschema import Draft202012Validator

    from dldoctor.schema import report_schema

    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "changed"
    assert report_schema()["title"] != "changed", "report_schema() must return a fresh copy"

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "schema/*.json" in package_data["dldoctor"], "the schema must be installed with the package"


def test_a_hand_built_report_meets_the_contract():
    diagnosis = small_diagnosis()
    assert_report_contract(diagnosis)
    report = diagnosis.to_dict()
    assert report["diagnoses"][0]["metrics"]["final"] == "nan"  # JSON has no NaN: written as text


def test_an_empty_healthy_report_is_valid():
    report = small_diagnosis(diagnoses=(), checks=(), reports={}).to_dict()
    assert report["status"] == "healthy"
    assert schema_errors(report) == []


def test_the_shared_optional_additions_are_valid():
    report = small_diagnosis().to_dict()
    report["measurements"] = {
        "memory.peak_per_sample": {"value": 1024, "unit": "B", "noise": None, "better": "lower",
                                   "check": "memory-model", "title": "bytes per sample at the peak"},
        "overfit.final_loss": {"value": "inf", "unit": "", "noise": 0.01, "better": None,
                               "check": "overfit-batch", "title": "the last loss"},
    }
    report["diagnoses"][0].update(file="train.py", line=42, baseline="new", accepted="known upstream, see #12")
    report["baseline"] = {"file": "dldoctor-baseline.json", "known": 1, "new": 1,
                          "fixed": [{"id": "wrong-mode", "check": "eval-mode", "location": "model"}]}
    report["series"] = {"overfit_loss": {"steps": [0, 1, 2], "loss": [2.3, 1.1, 0.4]}}
    assert schema_errors(report) == []


@pytest.mark.parametrize("breakage, where", [
    (lambda r: r.update(surprise=1), "(top level)"),
    (lambda r: r["diagnoses"][0].update(surprise=1), "diagnoses/0"),
    (lambda r: r["checks"][0].update(surprise=1), "checks/0"),
    (lambda r: r.pop("status"), "(top level)"),
    (lambda r: r["diagnoses"][1].pop("explained_by"), "diagnoses/1"),
    (lambda r: r.update(status="fine"), "status"),
    (lambda r: r["diagnoses"][0].update(severity="fatal"), "diagnoses/0/severity"),
    (lambda r: r["diagnoses"][0].update(confidence=1.5), "diagnoses/0/confidence"),
    (lambda r: r["diagnoses"][0].update(line="42"), "diagnoses/0/line"),
    (lambda r: r["diagnoses"][0]["metrics"].update(shape=[1, 2]), "diagnoses/0/metrics/shape"),
    (lambda r: r["checks"][1].update(status="timeout"), "checks/1/status"),
    (lambda r: r["coverage"].pop("errored"), "coverage"),
    (lambda r: r.update(measurements={"m": {"value": 1.0, "unit": "s"}}), "measurements/m"),
    (lambda r: r.update(baseline={"file": "b.json", "known": 0, "new": 0}), "baseline"),
])
def test_the_schema_rejects_drift(breakage, where):
    report = copy.deepcopy(small_diagnosis().to_dict())
    breakage(report)
    errors = schema_errors(report)
    assert errors, "the broken report validated"
    assert any(e.startswith(where + ":") for e in errors), errors
