"""Baseline files and the spec's ``accept``: pure functions on prebuilt diagnoses (no run)."""

from __future__ import annotations

import json

import pytest

from dldoctor.core.baseline import (
    apply_accept,
    apply_baseline,
    baseline_of,
    baseline_text,
    check_accept,
    fingerprint,
    load_baseline,
    parse_baseline,
    summary_line,
)
from dldoctor.core.diagnosis import CheckResult, CheckStatus, Diagnosis
from dldoctor.core.errors import EntrypointError, ExitCode, UsageError
from dldoctor.core.finding import Finding
from dldoctor.core.severity import FailOn, Severity
from dldoctor.render import OutputFormat, render
from tests.report_contract import schema_errors


def finding(id_: str, check: str, location: str, severity: Severity = Severity.ERROR, **kw) -> Finding:
    return Finding(id=id_, severity=severity, confidence=0.9, title=kw.pop("title", f"{id_} here"), check=check,
                   evidence=kw.pop("evidence", ("measured 0.98",)), location=location, rank=1, **kw)


def diagnosis(*findings: Finding, ran: tuple[str, ...] = ("initialization", "gradient-flow", "label-range"),
              skipped: tuple[str, ...] = ("class-imbalance",)) -> Diagnosis:
    checks = tuple(CheckResult(n, "run", CheckStatus.PASSED) for n in ran) + tuple(
        CheckResult(n, "data", CheckStatus.SKIPPED, reason="stage data is not part of this command") for n in skipped)
    return Diagnosis("0.1.0", "train.py", tuple(findings), checks, command="probe")


DEAD = finding("dead-activations", "initialization", "act")
NOGRAD = finding("no-gradient-flow", "gradient-flow", "fc1")
INFO = finding("out-of-memory", "memory-model", "model", Severity.INFO)


def test_fingerprint_ignores_numbers_wording_and_line_numbers():
    a = finding("stale-gradients", "loop-gradients", "train.py:42 in main", title="loss 0.93 at step 3")
    b = finding("stale-gradients", "loop-gradients", "train.py:57 in main", title="loss 1.2 at step 9",
                evidence=("other numbers",))
    assert fingerprint(a) == fingerprint(b) == ("stale-gradients", "loop-gradients", "train.py in main")
    assert fingerprint(a) != fingerprint(finding("stale-gradients", "loop-gradients", "other.py:42 in main"))


def test_baseline_records_warnings_and_errors_only():
    warn = finding("lr-too-low", "loop-schedule", "optimizer", Severity.WARNING)
    gap = finding("check-incomplete", "numerics", "model", Severity.WARNING)
    base = baseline_of(diagnosis(DEAD, warn, INFO, gap))
    assert set(base.entries) == {fingerprint(DEAD), fingerprint(warn)}
    data = json.loads(baseline_text(diagnosis(DEAD, warn, INFO)))
    assert data["dldoctor_baseline"] == 1 and data["target"] == "train.py" and data["command"] == "probe"
    assert [f["id"] for f in data["findings"]] == ["dead-activations", "lr-too-low"]
    assert parse_baseline(data, "b.json").fingerprints == base.fingerprints


def test_known_findings_do_not_trip_fail_on_and_new_ones_do():
    base = baseline_of(diagnosis(DEAD))
    same = apply_baseline(diagnosis(DEAD, INFO), base, "b.json")
    assert [f.baseline for f in same.diagnoses] == ["known", None]
    assert same.exit_code(FailOn.ERROR) is ExitCode.OK
    assert same.baseline == {"file": "b.json", "known": 1, "new": 0, "fixed": []}
    worse = apply_baseline(diagnosis(DEAD, NOGRAD), base, "b.json")
    assert {f.id: f.baseline for f in worse.diagnoses} == {"dead-activations": "known", "no-gradient-flow": "new"}
    assert worse.exit_code(FailOn.ERROR) is ExitCode.FINDINGS
    assert worse.baseline is not None and worse.baseline["new"] == 1
    # Without the baseline the same diagnosis fails on the known finding too.
    assert diagnosis(DEAD).exit_code(FailOn.ERROR) is ExitCode.FINDINGS


def test_fixed_lists_only_findings_whose_check_ran():
    imbalance = finding("class-imbalance", "class-imbalance", "data", Severity.WARNING)
    base = baseline_of(diagnosis(DEAD, NOGRAD, imbalance))
    now = apply_baseline(diagnosis(DEAD), base, "b.json")
    assert now.baseline is not None
    assert now.baseline["fixed"] == [{"id": "no-gradient-flow", "check": "gradient-flow", "location": "fc1"}]
    line = summary_line(now)
    assert line.startswith("baseline b.json: 1 known, 0 new, 1 fixed") and "no-gradient-flow at fc1" in line


def test_a_fatal_finding_exits_2_whatever_the_baseline_says():
    fatal = finding("entrypoint-error", "load-entrypoint", "entrypoint", metrics={"fatal": True})
    marked = apply_baseline(diagnosis(fatal), parse_baseline(
        {"dldoctor_baseline": 1, "findings": [{"id": "entrypoint-error", "check": "load-entrypoint",
                                               "location": "entrypoint"}]}, "b.json"), "b.json")
    assert marked.diagnoses[0].baseline is None
    assert marked.exit_code(FailOn.ERROR) is ExitCode.USAGE
    assert apply_accept(diagnosis(fatal), {"entrypoint-error": "x"}).exit_code(FailOn.ERROR) is ExitCode.USAGE


def test_marks_round_trip_through_the_json_contract():
    marked = apply_accept(apply_baseline(diagnosis(DEAD, NOGRAD), baseline_of(diagnosis(DEAD)), "b.json"),
                          {"no-gradient-flow": "head-only fine-tuning on purpose"})
    data = json.loads(render(marked, OutputFormat.JSON))
    by_id = {f["id"]: f for f in data["diagnoses"]}
    assert by_id["dead-activations"]["baseline"] == "known" and "accepted" not in by_id["dead-activations"]
    assert by_id["no-gradient-flow"]["accepted"] == "head-only fine-tuning on purpose"
    assert data["baseline"] == {"file": "b.json", "known": 1, "new": 1, "fixed": []}
    assert schema_errors(data) == []
    again = Diagnosis.from_dict(data)
    assert again == marked
    assert again.exit_code(FailOn.ERROR) is ExitCode.OK
    plain = json.loads(render(diagnosis(DEAD), OutputFormat.JSON))
    assert "baseline" not in plain and "baseline" not in plain["diagnoses"][0]


@pytest.mark.parametrize("fmt", [OutputFormat.RICH, OutputFormat.MARKDOWN])
def test_people_formats_show_the_reason_and_the_baseline_line(fmt):
    marked = apply_accept(apply_baseline(diagnosis(DEAD, NOGRAD), baseline_of(diagnosis(DEAD)), "b.json"),
                          {"no-gradient-flow": "head-only fine-tuning on purpose"})
    text = render(marked, fmt, width=200) if fmt is OutputFormat.RICH else render(marked, fmt)
    assert "accepted: head-only fine-tuning on purpose" in text
    assert "known" in text
    assert "baseline b.json: 1 known, 1 new, 0 fixed" in text


def test_check_accept_rejects_unknown_ids_empty_reasons_and_run_failures():
    assert check_accept({"class-imbalance": "  1:20 by design "}) == {"class-imbalance": "1:20 by design"}
    with pytest.raises(EntrypointError, match="did you mean 'class-imbalance'"):
        check_accept({"class-imbalanse": "x"})
    with pytest.raises(EntrypointError, match="non-empty string"):
        check_accept({"class-imbalance": " "})
    with pytest.raises(EntrypointError, match="cannot accept 'entrypoint-error'"):
        check_accept({"entrypoint-error": "x"})
    with pytest.raises(EntrypointError, match="must be a dict"):
        check_accept(["class-imbalance"])


@pytest.mark.parametrize(("text", "message"), [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    ('{"findings": []}', "not a dldoctor baseline file"),
    ('{"dldoctor_baseline": 99, "findings": []}', "format 99"),
    ('{"dldoctor_baseline": 1, "findings": [{"check": "x"}]}', r"findings\[0\]"),
])
def test_a_bad_baseline_file_is_a_usage_error(tmp_path, text, message):
    path = tmp_path / "b.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        load_baseline(path)
    assert caught.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(("accept", "message"), [
    (["class-imbalance"], "must be a dict of diagnosis ID -> reason, got list"),
    ({"class-imbalance": ""}, "the reason for 'class-imbalance' must be a non-empty string"),
    ({"class-imbalance": 3}, "the reason for 'class-imbalance' must be a non-empty string, got 3"),
])
def test_the_spec_rejects_a_malformed_accept(accept, message):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from dldoctor.loading.spec import validate_spec

    raw = {"model": lambda: nn.Linear(2, 2),
           "train_loader": DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))),
           "loss_fn": nn.CrossEntropyLoss(), "optimizer": lambda p: torch.optim.SGD(p, lr=0.1)}
    assert validate_spec({**raw, "accept": {"class-imbalance": "by design"}}).accept == {"class-imbalance": "by design"}
    with pytest.raises(EntrypointError, match=message):
        validate_spec({**raw, "accept": accept})
