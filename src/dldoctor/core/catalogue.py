"""The catalogue: what each diagnosis ID means, what points to it, what to try.

``dldoctor explain ID`` prints an entry. Checks take their default title and fixes
from here and tailor them to the case; ranking reads ``explains`` to let a root
cause explain away the symptoms it produces.
"""

from __future__ import annotations

import difflib

from dldoctor.core.catalogue_entries import ENTRIES
from dldoctor.core.entry import Entry
from dldoctor.core.ids import DiagnosisId, Family

__all__ = ["CATALOGUE", "DiagnosisId", "Entry", "Family", "closest", "get"]

CATALOGUE: dict[str, Entry] = {entry.id.value: entry for entry in ENTRIES}


def get(diagnosis_id: str) -> Entry:
    """Return the entry for ``diagnosis_id``; raise KeyError for an unknown ID."""
    return CATALOGUE[str(diagnosis_id)]


def closest(text: str, n: int = 3) -> list[str]:
    """The known IDs closest to ``text`` (for "did you mean" messages)."""
    return difflib.get_close_matches(text.strip().lower(), list(CATALOGUE), n=n, cutoff=0.4)
