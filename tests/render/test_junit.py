"""JUnit XML: one test case per check, failures carry the evidence, fatal runs fail too."""

import xml.etree.ElementTree as ET

from dldoctor.render import OutputFormat, render
from tests.render.format_cases import DIAGNOSIS, FATAL


def _suite(diagnosis):
    root = ET.fromstring(render(diagnosis, OutputFormat.JUNIT))
    assert root.tag == "testsuite" and root.get("name") == "dldoctor"
    return root


def test_one_testcase_per_check_with_its_outcome():
    suite = _suite(DIAGNOSIS)
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [c.name for c in DIAGNOSIS.checks]
    assert cases["forward-pass"].get("classname") == "dldoctor.run"
    assert cases["overfit-batch"].get("classname") == "dldoctor.overfit"
    assert float(cases["overfit-batch"].get("time")) == 2.5
    outcome = {name: [child.tag for child in case] for name, case in cases.items()}
    # an info finding does not fail its check; a warning does
    assert outcome == {"forward-pass": ["failure"], "overfit-batch": ["failure"], "class-imbalance": [],
                       "label-range": ["skipped"], "numerics": ["error"]}
    assert cases["label-range"].find("skipped").get("message") == "no classification task"
    assert "timed out" in cases["numerics"].find("error").get("message")
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["5", "2", "1", "1"]
    assert float(suite.get("time")) == 3.92


def test_failure_holds_title_evidence_fixes_and_source_line():
    failure = _suite(DIAGNOSIS).find("testcase[@name='forward-pass']/failure")
    assert failure.get("message") == DIAGNOSIS.diagnoses[0].title
    assert failure.get("type") == "shape-mismatch"
    text = failure.text
    for part in (*DIAGNOSIS.diagnoses[0].evidence, "Set in_features=400 in fc1.",
                 "examples/bugs/crash_cnn_wrong_in_features.py:22"):
        assert part in text


def test_fatal_finding_is_a_failing_testcase_even_without_checks():
    suite = _suite(FATAL)
    cases = list(suite.iter("testcase"))
    assert len(cases) == 1 and cases[0].get("name") == "load-entrypoint"
    assert cases[0].find("failure").get("type") == "entrypoint-error"
    assert "FileNotFoundError" in cases[0].find("failure").text
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
