"""The catalogue: what each diagnosis ID means, what points to it, what to try.

``dldoctor explain ID`` prints an entry. Checks take their default title and fixes
from here and tailor them to the case; ranking reads ``explains`` to let a root
cause explain away the symptoms it produces.
"""

from __future__ import annotations

import dataclasses
import difflib

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


D = DiagnosisId
F = Family

# The entries live in their own module so this one stays readable.
from dldoctor.core.catalogue_entries import ENTRIES  # noqa: E402

CATALOGUE: dict[str, Entry] = {entry.id.value: entry for entry in ENTRIES}


def get(diagnosis_id: str) -> Entry:
    """Return the entry for ``diagnosis_id``; raise KeyError for an unknown ID."""
    return CATALOGUE[str(diagnosis_id)]


def closest(text: str, n: int = 3) -> list[str]:
    """The known IDs closest to ``text`` (for "did you mean" messages)."""
    return difflib.get_close_matches(text.strip().lower(), list(CATALOGUE), n=n, cutoff=0.4)
