import dataclasses
import json

import numpy as np
import pytest

from dldoctor.core.diagnosis import CheckResult, Diagnosis
from dldoctor.core.errors import ExitCode
from dldoctor.core.finding import Finding
from dldoctor.core.severity import FailOn, Severity


def test_finding_is_frozen_and_round_trips_through_json():
    finding = Finding(id="lr-too-high", severity="error", confidence=1.7, title="t", check="c",
                      evidence=["e"], fixes=["f"], metrics={"loss": np.float32(2.5), "steps": np.int64(3)},
                      location="fc1", stage="overfit", rank=1)
    assert finding.confidence == 1.0  # clipped
    assert finding.metrics == {"loss": 2.5, "steps": 3.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.id = "other"  # type: ignore[misc]
    again = Finding.from_dict(json.loads(json.dumps(finding.to_dict())))
    assert again == finding


def test_diagnosis_round_trips_and_derives_status():
    diag = Diagnosis("0.1.0", "t.py", (Finding("lr-too-low", Severity.WARNING, 0.5, "t", rank=1),),
                     (CheckResult("forward-pass", "run", "passed", 0.1),), seed=3, device="cpu", duration_s=1.0)
    data = json.loads(json.dumps(diag.to_dict()))
    assert data["status"] == "warning"
    assert Diagnosis.from_dict(data) == diag


@pytest.mark.parametrize("severity,fail_on,code", [
    ("error", FailOn.ERROR, ExitCode.FINDINGS), ("warning", FailOn.ERROR, ExitCode.OK),
    ("warning", FailOn.WARNING, ExitCode.FINDINGS), ("error", FailOn.NEVER, ExitCode.OK),
    ("info", FailOn.WARNING, ExitCode.OK),
])
def test_exit_code_follows_fail_on(severity, fail_on, code):
    diag = Diagnosis("0.1.0", "t.py", (Finding("lr-too-low", severity, 0.5, "t"),))
    assert diag.exit_code(fail_on) is code


def test_a_healthy_diagnosis_exits_zero():
    diag = Diagnosis("0.1.0", "t.py", ())
    assert diag.status == "healthy" and diag.exit_code(FailOn.WARNING) is ExitCode.OK
