"""SARIF 2.1.0: the tool, the rules that appear, one result per finding with level and location."""

import json

from dldoctor.core import catalogue
from dldoctor.render import OutputFormat, render
from tests.render.format_cases import DIAGNOSIS, FATAL


def _log(diagnosis):
    log = json.loads(render(diagnosis, OutputFormat.SARIF))
    assert log["version"] == "2.1.0" and "sarif-2.1.0" in log["$schema"]
    assert len(log["runs"]) == 1
    return log["runs"][0]


def test_driver_and_rules_are_the_ids_that_appear():
    run = _log(DIAGNOSIS)
    driver = run["tool"]["driver"]
    assert driver["name"] == "dldoctor" and driver["version"] == "0.1.0"
    assert [r["id"] for r in driver["rules"]] == ["shape-mismatch", "lr-too-low", "class-imbalance"]
    assert driver["rules"][0]["shortDescription"]["text"] == catalogue.get("shape-mismatch").title


def test_results_levels_messages_and_locations():
    run = _log(DIAGNOSIS)
    results = run["results"]
    assert [(r["ruleId"], r["level"], r["ruleIndex"]) for r in results] == [
        ("shape-mismatch", "error", 0), ("lr-too-low", "warning", 1), ("class-imbalance", "note", 2)]
    assert results[0]["message"]["text"].startswith(DIAGNOSIS.diagnoses[0].title + "\n")
    assert DIAGNOSIS.diagnoses[0].evidence[0] in results[0]["message"]["text"]
    physical = results[0]["locations"][0]["physicalLocation"]
    # the tests run from the repository root: the file is given relative to it
    assert physical["artifactLocation"] == {"uri": "examples/bugs/crash_cnn_wrong_in_features.py",
                                            "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 22}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")
    # no file known: a logical location (the module path, or data, ...), none when there is no location
    assert "physicalLocation" not in results[2]["locations"][0]
    assert results[2]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "data"
    assert "locations" not in results[1]


def test_a_file_outside_the_working_directory_is_an_absolute_uri(tmp_path, monkeypatch):
    import dataclasses

    elsewhere = tmp_path / "proj" / "train.py"
    moved = dataclasses.replace(DIAGNOSIS.diagnoses[0], file=str(elsewhere))
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    run = _log(dataclasses.replace(DIAGNOSIS, diagnoses=(moved,)))
    artifact = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": elsewhere.resolve().as_uri()}
    assert "originalUriBaseIds" not in run


def test_fatal_run_is_not_a_successful_execution():
    run = _log(FATAL)
    assert run["invocations"][0]["executionSuccessful"] is False
    assert run["results"][0]["ruleId"] == "entrypoint-error"
    assert _log(DIAGNOSIS)["invocations"][0]["executionSuccessful"] is True
