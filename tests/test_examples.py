"""Every shipped example runs in CI: the zoo's expectations and the healthy demo."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, diagnose_file

ZOO = sorted((REPO / "examples" / "bugs").glob("*.py"))
HEADER = re.compile(r"^#\s*EXPECT:\s*([\w-]+)", re.M)
ALSO = re.compile(r"^#\s*ALSO:\s*(.+)$", re.M)


def expectation(path: Path) -> tuple[str, set[str]]:
    head = "\n".join(path.read_text().splitlines()[:5])
    expect = HEADER.search(head).group(1)
    also = ALSO.search(head)
    return expect, {expect, *(a.strip() for a in also.group(1).split(","))} if also else {expect}


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_case(path):
    import torch

    expect, accepted = expectation(path)
    if expect == "device-mismatch" and torch.cuda.is_available():
        pytest.skip("hard-coded CUDA is only a bug on a machine without it")
    diagnosis = diagnose_file(path)
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    if expect == "healthy":
        assert alarms == [], [f"{f.id}: {f.title}" for f in alarms]
    else:
        assert alarms and alarms[0].id in accepted, [f"{f.id}: {f.title}" for f in alarms]
        assert alarms[0].location, "the finding must be localised"


EXAMPLES = sorted((REPO / "examples").glob("*/train.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_shipped_examples_are_healthy(path):
    diagnosis = diagnose_file(path)
    assert diagnosis.status == "healthy", [f"{f.id}: {f.title}" for f in diagnosis.diagnoses]
    assert all(c.status.value in ("passed", "skipped") for c in diagnosis.checks)
