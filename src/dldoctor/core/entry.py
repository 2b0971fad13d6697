"""The shape of a catalogue entry."""

from __future__ import annotations

import dataclasses

from dldoctor.core.ids import DiagnosisId, Family


@dataclasses.dataclass(frozen=True)
class Entry:
    """The catalogue entry of one diagnosis ID.

    Attributes:
        id: the diagnosis ID.
        family: which family of root causes it belongs to.
        title: a short, general title.
        explanation: what the root cause is and why it matters (a paragraph).
        evidence: what measurements point to it.
        fixes: things to try, most likely to help first.
        explains: IDs of symptoms this root cause commonly produces; when both
            are found, ranking marks the symptom as explained by this one.
    """

    id: DiagnosisId
    family: Family
    title: str
    explanation: str
    evidence: tuple[str, ...]
    fixes: tuple[str, ...]
    explains: tuple[DiagnosisId, ...] = ()
