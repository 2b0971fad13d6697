"""docs/diagnoses.md, written from the catalogue so that the page cannot drift from it.

``python -m dldoctor.core.catalogue_doc > docs/diagnoses.md`` regenerates the page; a
test compares the committed page with :func:`catalogue_markdown`. Only built-in IDs are
listed (a plugin's own IDs are documented by the plugin; ``dldoctor explain`` knows both).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping

from dldoctor.core.catalogue import CATALOGUE
from dldoctor.core.entry import Entry

#: Characters that would start emphasis or a link in Markdown: ``*``, ``[``, ``]``, and an
#: underscore at the edge of a word (``__init__``, ``clip_grad_norm_(``); one inside a word
#: (``num_workers``) is plain text in CommonMark, so it is left readable.
_MARKUP = re.compile(r"[*\[\]]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _text(value: str) -> str:
    return _MARKUP.sub(lambda m: "\\" + m.group(0), value)


def _plain(value: object) -> str:
    """An enum member's value, or the string itself."""
    return str(getattr(value, "value", value))


def _anchor(diagnosis_id: str) -> str:
    return diagnosis_id  # GitHub's heading anchors: kebab-case IDs are their own anchors


def builtin_emitters() -> dict[str, tuple[str, ...]]:
    """Built-in diagnosis ID -> the built-in checks that may report it, in run order."""
    from dldoctor.core.registry import discover

    registered, _ = discover(plugins=False)
    emitters: dict[str, list[str]] = {}
    for item in registered:
        for diagnosis_id in item.check.emits:
            emitters.setdefault(str(diagnosis_id), []).append(item.check.name)
    return {k: tuple(v) for k, v in emitters.items()}


def _families(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(_plain(entry.family), []).append(entry)
    return grouped


def _entry(entry: Entry, emitters: Mapping[str, tuple[str, ...]]) -> list[str]:
    key = _plain(entry.id)
    lines = [f"### {key}", "", f"**{_text(entry.title)}**", "", _text(entry.explanation), ""]
    if entry.evidence:
        lines += ["Evidence dldoctor looks for:", ""]
        lines += [f"- {_text(e)}" for e in entry.evidence]
        lines.append("")
    lines += ["Fixes, in order:", ""]
    lines += [f"{i}. {_text(fix)}" for i, fix in enumerate(entry.fixes, start=1)]
    lines.append("")
    if entry.explains:
        lines += ["Often explains: " + ", ".join(f"[`{_plain(i)}`](#{_anchor(_plain(i))})" for i in entry.explains)
                  + " (ranking marks those findings as explained by this one).", ""]
    checks = emitters.get(key, ())
    if checks:
        lines += ["Reported by: " + ", ".join(f"`{c}`" for c in checks) + ".", ""]
    elif key == "check-incomplete":
        lines += ["Reported by the pipeline, for any check that could not finish.", ""]
    else:
        lines += ["No built-in check reports this ID yet: it is reserved in the catalogue.", ""]
    return lines


def catalogue_markdown(emitters: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """The whole page: an index of every built-in ID, then each entry, grouped by family.

    Args:
        emitters: ID -> checks reporting it; by default read from the built-in checks
            (which imports them, and torch).
    """
    emitters = builtin_emitters() if emitters is None else emitters
    grouped = _families(CATALOGUE.values())
    lines = [
        "# Diagnosis IDs",
        "",
        "<!-- Generated from src/dldoctor/core/catalogue_entries.py by",
        "     `python -m dldoctor.core.catalogue_doc > docs/diagnoses.md`; do not edit by hand",
        "     (tests/core/test_catalogue_doc.py fails when this page and the catalogue differ). -->",
        "",
        "Every diagnosis ID dldoctor reports, with what it means, the evidence that points to it",
        "and the fixes to try, most likely first. `dldoctor explain ID` prints the same entry;",
        "`--ignore ID` silences it. IDs are never renamed or removed. A plugin's own IDs are",
        "documented by the plugin (see [plugins.md](plugins.md)).",
        "",
        "| ID | family | title |",
        "|---|---|---|",
    ]
    for family, entries in grouped.items():
        lines += [f"| [`{_plain(e.id)}`](#{_anchor(_plain(e.id))}) | {family} | {_text(e.title)} |" for e in entries]
    lines.append("")
    for family, entries in grouped.items():
        lines += [f"## {family[:1].upper()}{family[1:]}", ""]
        for entry in entries:
            lines += _entry(entry, emitters)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(catalogue_markdown())


if __name__ == "__main__":
    main()
