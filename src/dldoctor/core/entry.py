"""The shape of a catalogue entry."""

from __future__ import annotations

import dataclasses

from dldoctor.core.ids import DiagnosisId, Family


@dataclasses.dataclass(frozen=True)
class Entry:
    """The catalogue entry of one diagnosis ID.

    Built-in entries use :class:`DiagnosisId` and :class:`Family` members; a plugin's
    entry (built by the registry from its :class:`~dldoctor.core.catalogue.DiagnosisInfo`)
    has a plain string ID and ``plugin <distribution>`` as its family.

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

    id: DiagnosisId | str
    family: Family | str
    title: str
    explanation: str
    evidence: tuple[str, ...]
    fixes: tuple[str, ...]
    explains: tuple[DiagnosisId | str, ...] = ()
