"""Renderers: one per format (exhaustive), golden files at a fixed width."""

import json
import os
from pathlib import Path

import pytest

from dldoctor.core.diagnosis import CheckResult, Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.render import RENDERERS, OutputFormat, render

GOLDEN = Path(__file__).parent / "golden"

DIAGNOSIS = Diagnosis(
    dldoctor_version="0.1.0",
    target="examples/bugs/example.py",
    diagnoses=(
        Finding(id="shape-mismatch", severity="error", confidence=0.95,
                title="model[6] (Linear, in_features=1568) gets an unflattened [64, 32, 7, 7] input",
                check="forward-pass", evidence=("model[6] (Linear, in_features=1568) got [64, 32, 7, 7] float32",
                                                "torch said: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
                fixes=("Flatten before model[6]: x = torch.flatten(x, 1).", "Set in_features to what the layer "
                       "before produces."), metrics={"in_features": 1568}, location="model[6]", stage="run", rank=1),
        Finding(id="lr-too-low", severity="warning", confidence=0.6, title="loss barely moves at lr=1e-5",
                check="overfit-batch", evidence=("loss 2.30 -> 2.29 in 200 steps",), fixes=("Try lr=1e-3.",),
                stage="overfit", explained_by="shape-mismatch", rank=2),
        Finding(id="class-imbalance", severity="info", confidence=0.9, title="classes 0 and 1 are 90/10",
                check="data", stage="data", rank=3),
    ),
    checks=(CheckResult("forward-pass", "run", "failed", 0.12), CheckResult("overfit-batch", "overfit", "skipped",
                                                                           0.0, "the training step crashed")),
    seed=0, device="cpu", duration_s=1.5,
)


def test_every_format_has_a_renderer():
    assert set(RENDERERS) == set(OutputFormat)


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_matches_golden_file(fmt):
    text = render(DIAGNOSIS, fmt, width=100)
    path = GOLDEN / f"report.{fmt.value}.txt"
    if os.environ.get("DLDOCTOR_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_json_is_the_contract_and_round_trips():
    data = json.loads(render(DIAGNOSIS, OutputFormat.JSON))
    assert data["status"] == "error"
    assert [d["rank"] for d in data["diagnoses"]] == [1, 2, 3]
    assert Diagnosis.from_dict(data) == DIAGNOSIS
