"""The catalogue: what each diagnosis ID means, what points to it, what to try.

``dldoctor explain ID`` prints an entry. Checks take their default title and fixes
from here and tailor them to the case; ranking reads ``explains`` to let a root
cause explain away the symptoms it produces.

The built-in entries (:data:`CATALOGUE`) are fixed: one per
:class:`~dldoctor.core.ids.DiagnosisId`. A plugin check declares its own IDs in its
``catalogue`` class attribute (``{"my-id": DiagnosisInfo(...)}``); the registry adds
them here when it loads the plugin (:func:`set_plugin_entries`), so that
:func:`get`, :func:`known` and ``dldoctor explain`` know them too.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dldoctor.core.catalogue_entries import ENTRIES
from dldoctor.core.entry import Entry
from dldoctor.core.ids import DiagnosisId, Family

if TYPE_CHECKING:
    from dldoctor.core.finding import Finding

__all__ = [
    "CATALOGUE", "DiagnosisId", "DiagnosisInfo", "Entry", "Family", "all_entries", "closest", "get", "is_builtin",
    "known", "owners", "plugin_entries", "set_plugin_entries",
]

#: The built-in entries, by ID. Never changed at run time (plugins go to a table beside it).
CATALOGUE: dict[str, Entry] = {
    (entry.id.value if isinstance(entry.id, DiagnosisId) else entry.id): entry for entry in ENTRIES
}

#: What a diagnosis ID looks like: kebab-case, lowercase letters and digits.
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class DiagnosisInfo:
    """A plugin's catalogue entry for one of its own diagnosis IDs.

    The ID is the key under which a check declares it::

        class MyCheck(Check):
            catalogue = {"my-id": DiagnosisInfo(title=..., explanation=..., evidence=(...), fixes=(...))}

    Attributes:
        title: a short, general title (at most 80 characters).
        explanation: what the root cause is and why it matters (a paragraph).
        evidence: what measurements point to it.
        fixes: things to try, most likely to help first (``Check.finding`` fills them in).
        explains: IDs (built-in, or this check's own) of symptoms this root cause
            produces; ranking marks those findings as explained by this one, but only
            for findings of this ID that come from the check(s) declaring it.
    """

    title: str
    explanation: str
    evidence: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("evidence", "fixes", "explains"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"DiagnosisInfo.{name} must be a tuple of strings, got {value!r}")
            object.__setattr__(self, name, tuple(str(v) for v in value))
        if not isinstance(self.title, str) or not self.title.strip():
            raise TypeError("DiagnosisInfo.title must be a non-empty string")
        if len(self.title) > 80:
            raise TypeError(f"DiagnosisInfo.title must be at most 80 characters: {self.title!r}")
        if not isinstance(self.explanation, str) or not self.explanation.strip():
            raise TypeError("DiagnosisInfo.explanation must be a non-empty string")
        if not self.fixes:
            raise TypeError("DiagnosisInfo.fixes must list at least one fix")

    def entry(self, diagnosis_id: str, family: str = "plugin") -> Entry:
        """This info as a catalogue :class:`Entry` of ``diagnosis_id``."""
        return Entry(id=diagnosis_id, family=family, title=self.title, explanation=self.explanation,
                     evidence=self.evidence, fixes=self.fixes, explains=self.explains)


_plugin_entries: dict[str, Entry] = {}
_plugin_owners: dict[str, tuple[str, ...]] = {}


def set_plugin_entries(entries: Mapping[str, Entry], owners: Mapping[str, Iterable[str]] | None = None) -> None:
    """Replace the plugins' entries (the registry calls this each time it loads plugins).

    Args:
        entries: plugin diagnosis ID -> entry; none may be a built-in ID.
        owners: plugin diagnosis ID -> names of the checks that declare it.
    """
    clash = sorted(set(entries) & set(CATALOGUE))
    if clash:
        raise ValueError(f"plugin entries may not replace built-in IDs: {clash}")
    _plugin_entries.clear()
    _plugin_entries.update(entries)
    _plugin_owners.clear()
    _plugin_owners.update({k: tuple(sorted(v)) for k, v in (owners or {}).items()})


def plugin_entries() -> Mapping[str, Entry]:
    """The entries the loaded plugins declare, by ID (empty until plugins are loaded)."""
    return dict(_plugin_entries)


def owners(diagnosis_id: str) -> tuple[str, ...]:
    """The plugin checks that declare ``diagnosis_id`` (empty for a built-in or unknown ID)."""
    return _plugin_owners.get(str(diagnosis_id), ())


def all_entries() -> dict[str, Entry]:
    """Built-in entries, then the loaded plugins' entries."""
    return {**CATALOGUE, **_plugin_entries}


def is_builtin(diagnosis_id: str) -> bool:
    return str(diagnosis_id) in CATALOGUE


def known(diagnosis_id: str) -> bool:
    """True for a built-in ID and for an ID of a loaded plugin."""
    return str(diagnosis_id) in CATALOGUE or str(diagnosis_id) in _plugin_entries


def get(diagnosis_id: str) -> Entry:
    """Return the entry for ``diagnosis_id`` (built-in or a loaded plugin's); raise KeyError for an unknown ID."""
    key = str(diagnosis_id)
    if key in CATALOGUE:
        return CATALOGUE[key]
    return _plugin_entries[key]


def closest(text: str, n: int = 3) -> list[str]:
    """The known IDs closest to ``text`` (for "did you mean" messages)."""
    return difflib.get_close_matches(text.strip().lower(), list(all_entries()), n=n, cutoff=0.4)


def coverage_gap(title: str, *, check: str, evidence: tuple[str, ...], fixes: tuple[str, ...],
                 location: str) -> Finding:
    """A ``check-incomplete`` warning for checks that could not run at all (not the user's
    code failing): ``fixes`` first, then the catalogue's ``--allow-incomplete`` advice."""
    from dldoctor.core.finding import Finding
    from dldoctor.core.severity import Severity
    from dldoctor.core.stage import Stage

    allow = tuple(f for f in get("check-incomplete").fixes if "--allow-incomplete" in f)
    return Finding(id="check-incomplete", severity=Severity.WARNING, confidence=1.0, title=title, check=check,
                   evidence=evidence, fixes=(*fixes, *allow), metrics={"fatal": False, "user_code": False},
                   location=location, stage=Stage.RUN.label)
