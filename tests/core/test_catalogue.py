"""The catalogue covers every diagnosis ID, once, with usable text and an acyclic explains graph."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dldoctor.core import catalogue
from dldoctor.core.catalogue import CATALOGUE, ENTRIES, Entry
from dldoctor.core.ids import DiagnosisId, Family

# The public IDs, frozen here so that a rename or removal in the enum fails a test
# even when the shared diagnoses.md is not available.
FROZEN_IDS: tuple[str, ...] = (
    # crashes
    "shape-mismatch",
    "dtype-mismatch",
    "device-mismatch",
    "out-of-memory",
    "label-out-of-range",
    "entrypoint-error",
    # silent wiring bugs
    "loss-input-probabilities",
    "loss-broadcast",
    "batch-mixing",
    "loss-sign-flipped",
    "no-gradient-flow",
    "input-not-normalized",
    "labels-corrupted",
    "wrong-mode",
    "stale-gradients",
    "bad-initialization",
    # optimisation dynamics
    "lr-too-high",
    "lr-too-low",
    "numerical-instability",
    "exploding-gradients",
    "vanishing-gradients",
    "dead-activations",
    "over-regularization",
    "model-too-small",
    # data
    "class-imbalance",
    "too-little-data",
    "label-noise",
    "train-val-leakage",
    "distribution-shift",
    # evaluation
    "underfitting",
    "overfitting",
    "val-overfitting",
    "worse-than-baseline",
    "below-reference",
    # resources
    "memory-leak",
    "input-pipeline-bottleneck",
    # coverage
    "check-incomplete",
    # distributed training
    "ddp-duplicate-data",
    "ddp-same-order",
    "ddp-replicas-diverged",
    "ddp-gradients-not-averaged",
    "ddp-unsynced-batchnorm",
    "ddp-hang",
    "ddp-straggler",
    "ddp-scaling-mismatch",
)

CRASH_IDS = {
    "shape-mismatch",
    "dtype-mismatch",
    "device-mismatch",
    "out-of-memory",
    "label-out-of-range",
    "entrypoint-error",
}

# The shared folder sits beside the repository checkout (e.g. /work/shared next to /work/main).
DIAGNOSES_MD = Path(__file__).resolve().parents[2].parent / "shared" / "diagnoses.md"

_TABLE_ID = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def _ids_in_diagnoses_md(text: str) -> list[str]:
    """The IDs in the first column of the tables of diagnoses.md, in order."""
    return [m.group(1) for line in text.splitlines() if (m := _TABLE_ID.match(line.strip()))]


def _explains_graph() -> dict[str, set[str]]:
    return {entry.id.value: {str(target) for target in entry.explains} for entry in ENTRIES}


# ------------------------------------------------------------------- coverage


def test_frozen_ids_match_the_enum() -> None:
    assert len(FROZEN_IDS) == 45
    assert len(set(FROZEN_IDS)) == len(FROZEN_IDS)
    assert [member.value for member in DiagnosisId] == list(FROZEN_IDS)


def test_every_id_has_exactly_one_entry() -> None:
    ids = [entry.id for entry in ENTRIES]
    assert len(ids) == len(set(ids)), "duplicate entries"
    assert set(ids) == set(DiagnosisId)
    assert set(CATALOGUE) == {member.value for member in DiagnosisId}
    for member in DiagnosisId:
        assert CATALOGUE[member.value].id is member


def test_entries_follow_the_enum_order() -> None:
    assert [entry.id for entry in ENTRIES] == list(DiagnosisId)


def test_entries_are_entries_with_enum_typed_fields() -> None:
    for entry in ENTRIES:
        assert isinstance(entry, Entry)
        assert isinstance(entry.id, DiagnosisId)
        assert isinstance(entry.family, Family)
        for field in (entry.evidence, entry.fixes, entry.explains):
            assert isinstance(field, tuple), f"{entry.id}: use tuples (Entry is frozen)"
        for target in entry.explains:
            assert isinstance(target, DiagnosisId), f"{entry.id}: explains {target!r}"


@pytest.mark.skipif(not DIAGNOSES_MD.is_file(), reason=f"{DIAGNOSES_MD} not present")
def test_ids_in_shared_diagnoses_md_are_known() -> None:
    listed = _ids_in_diagnoses_md(DIAGNOSES_MD.read_text(encoding="utf-8"))
    assert listed, "no IDs found in the tables of diagnoses.md"
    known = {member.value for member in DiagnosisId}
    unknown = [i for i in listed if i not in known]
    assert not unknown, f"IDs in diagnoses.md missing from DiagnosisId: {unknown}"
    # The frozen list is the minimum set: every ID in it must still be documented.
    assert set(FROZEN_IDS) <= set(listed)


# ---------------------------------------------------------------- entry text


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id.value)
def test_entry_text_is_usable(entry: Entry) -> None:
    assert entry.title.strip()
    assert len(entry.title) <= 80, "keep titles short"
    assert entry.explanation.strip()
    assert len(entry.evidence) >= 2
    assert len(entry.fixes) >= 3
    for text in (*entry.evidence, *entry.fixes):
        assert isinstance(text, str) and text.strip()
    assert len(set(entry.fixes)) == len(entry.fixes), "duplicate fixes"


def test_families_match_the_id_sections() -> None:
    sections = {
        Family.CRASH: FROZEN_IDS[0:6],
        Family.WIRING: FROZEN_IDS[6:16],
        Family.OPTIMISATION: FROZEN_IDS[16:24],
        Family.DATA: FROZEN_IDS[24:29],
        Family.EVALUATION: FROZEN_IDS[29:34],
        Family.RESOURCES: FROZEN_IDS[34:36],
        Family.COVERAGE: FROZEN_IDS[36:37],
        Family.DISTRIBUTED: FROZEN_IDS[37:45],
    }
    for family, ids in sections.items():
        for i in ids:
            assert CATALOGUE[i].family is family, i


# ------------------------------------------------------------- explains graph


def test_explains_references_only_known_ids_and_never_itself() -> None:
    known = {member.value for member in DiagnosisId}
    for source, targets in _explains_graph().items():
        assert targets <= known, f"{source} explains unknown IDs {targets - known}"
        assert source not in targets, f"{source} explains itself"


def test_explains_has_no_duplicates() -> None:
    for entry in ENTRIES:
        assert len(set(entry.explains)) == len(entry.explains), entry.id


def test_explains_graph_has_no_cycles() -> None:
    graph = _explains_graph()
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)

    def visit(node: str, path: list[str]) -> None:
        colour[node] = grey
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, white) == grey:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                pytest.fail(f"cycle in explains: {' -> '.join(cycle)}")
            if colour.get(nxt, white) == white:
                visit(nxt, [*path, nxt])
        colour[node] = black

    for node in graph:
        if colour[node] == white:
            visit(node, [node])


def test_crashes_explain_nothing() -> None:
    for i in CRASH_IDS:
        assert CATALOGUE[i].explains == (), f"{i} stops the run; it explains no symptom"


# ------------------------------------------------------------------- lookups


def test_closest_suggests_the_intended_id() -> None:
    assert catalogue.closest("lr-to-high")[0] == "lr-too-high"


def test_get_returns_entries_and_rejects_unknown_ids() -> None:
    assert catalogue.get("lr-too-high") is CATALOGUE["lr-too-high"]
    assert catalogue.get(DiagnosisId.LR_TOO_HIGH).id is DiagnosisId.LR_TOO_HIGH
    with pytest.raises(KeyError):
        catalogue.get("no-such-diagnosis")


# ------------------------------------------------------------ plugin entries


def test_plugin_entries_sit_beside_the_builtin_ones_and_cannot_replace_them() -> None:
    info = catalogue.DiagnosisInfo(title="A plugin's", explanation="E.", evidence=("e",), fixes=("f",))
    try:
        catalogue.set_plugin_entries({"test-plugin-id": info.entry("test-plugin-id", "plugin dd")},
                                     {"test-plugin-id": ["a-check"]})
        assert catalogue.get("test-plugin-id").fixes == ("f",)
        assert catalogue.known("test-plugin-id") and not catalogue.is_builtin("test-plugin-id")
        assert "test-plugin-id" not in CATALOGUE  # the built-in table never changes
        assert catalogue.owners("test-plugin-id") == ("a-check",)
        with pytest.raises(ValueError, match="may not replace built-in IDs"):
            catalogue.set_plugin_entries({"lr-too-high": info.entry("lr-too-high")})
    finally:
        catalogue.set_plugin_entries({})
    assert not catalogue.known("test-plugin-id")
