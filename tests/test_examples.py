"""Every shipped example runs in CI: the zoo's expectations and the healthy demo."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, diagnose_file
from tests.report_contract import assert_report_contract

ZOO = sorted((REPO / "examples" / "bugs").glob("*.py"))
HEADER = re.compile(r"^#\s*EXPECT:\s*([\w-]+)", re.M)
ALSO = re.compile(r"^#\s*ALSO:\s*(.+)$", re.M)
STAGES = re.compile(r"^#\s*STAGES:\s*(.+)$", re.M)


def expectation(path: Path) -> tuple[str, set[str]]:
    head = "\n".join(path.read_text().splitlines()[:5])
    expect = HEADER.search(head).group(1)
    also = ALSO.search(head)
    return expect, {expect, *(a.strip() for a in also.group(1).split(","))} if also else {expect}


def declared_stages(path: Path):
    """Stages named by a ``# STAGES: run, overfit, data`` header (e.g. a healthy
    control for a later stage), or None."""
    from dldoctor.core.stage import Stage

    found = STAGES.search("\n".join(path.read_text().splitlines()[:5]))
    return tuple(Stage.parse(s) for s in found.group(1).split(",")) if found else None


def stages_for(expect: str):
    """The stages up to the last one whose checks can emit ``expect``, the single-batch stages
    when they can (healthy: stages 1-2).

    CI runs each case through the stages its diagnosis needs, so the suite stays within
    its time budget; the benchmark (benchmarks/diagnosis_accuracy.py) runs the full
    `dldoctor run` on every case and reports top-1/top-3 over all stages.
    """
    from dldoctor.core.registry import discover
    from dldoctor.core.stage import Stage

    registered, _ = discover(plugins=False)
    emitting = [r.check.stage for r in registered if expect in r.check.emits]
    # An ID the single-batch stages can emit is looked for there: a case whose bug only the
    # short training run shows (training-experiments' reruns) declares its stages.
    early = [s for s in emitting if s <= Stage.OVERFIT]
    last = max(early or emitting) if emitting and expect != "healthy" else Stage.OVERFIT
    return tuple(s for s in Stage if s <= last)


#: An optional test dependency a zoo case imports (transformers, Lightning).
LIBRARY_IMPORT = re.compile(r"^(?:from|import) (transformers|lightning|pytorch_lightning)\b", re.M)


@pytest.mark.zoo
@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_case(path):
    import torch

    expect, accepted = expectation(path)
    if expect == "device-mismatch" and torch.cuda.is_available():
        pytest.skip("hard-coded CUDA is only a bug on a machine without it")
    library = LIBRARY_IMPORT.search(path.read_text())
    if library:  # the library-model controls (healthy_lib_*)
        pytest.importorskip(library.group(1), reason="optional test dependency (requirements-optional.txt)")
    diagnosis = diagnose_file(path, stages=declared_stages(path) or stages_for(expect))
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    if expect == "healthy":
        assert alarms == [], [f"{f.id}: {f.title}" for f in alarms]
    else:
        assert alarms and alarms[0].id in accepted, [f"{f.id}: {f.title}" for f in alarms]
        assert alarms[0].location, "the finding must be localised"
    assert_report_contract(diagnosis)  # schema-valid JSON, round-trips, renders in every format


EXAMPLES = sorted((REPO / "examples").glob("*/train.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_shipped_examples_are_healthy(path):
    diagnosis = diagnose_file(path)  # every stage, as `dldoctor run` does
    assert diagnosis.status == "healthy", [f"{f.id}: {f.title}" for f in diagnosis.diagnoses]
    assert all(c.status.value in ("passed", "skipped") for c in diagnosis.checks)
    assert_report_contract(diagnosis)


SCRIPTS = sorted((REPO / "examples" / "scripts").glob("*.py"))
ARGS = re.compile(r"^#\s*ARGS:\s*(.+)$", re.M)
#: The framework a script imports, for the scripts that need an optional test dependency.
FRAMEWORK = {"lightning": "lightning", "hf_trainer": "transformers", "accelerate": "accelerate"}


@pytest.mark.zoo
@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_zoo_case(path):
    """An unmodified training script (no dldoctor_spec), run in script mode."""
    import shlex

    framework = next((m for key, m in FRAMEWORK.items() if path.stem.endswith(key)), None)
    if framework:
        pytest.importorskip(framework, reason="optional test dependency (requirements-optional.txt)")
    expect, accepted = expectation(path)
    found = ARGS.search("\n".join(path.read_text().splitlines()[:5]))
    diagnosis = diagnose_file(path, stages=stages_for(expect), script_args=tuple(shlex.split(found.group(1)))
                              if found else ())
    alarms = [f for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]
    if expect == "healthy":
        assert alarms == [], [f"{f.id}: {f.title}" for f in alarms]
    else:
        assert alarms and alarms[0].id in accepted, [f"{f.id}: {f.title}" for f in alarms]
        assert alarms[0].location, "the finding must be localised"
    assert_report_contract(diagnosis)
