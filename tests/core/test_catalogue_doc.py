"""docs/diagnoses.md is generated from the catalogue: the committed page must be the generated one."""

from __future__ import annotations

import re

from dldoctor.core.catalogue import CATALOGUE
from dldoctor.core.catalogue_doc import _text, catalogue_markdown, main
from tests.conftest import REPO

PAGE = REPO / "docs" / "diagnoses.md"


def test_the_committed_page_is_the_generated_one(capsys):
    main()  # what `python -m dldoctor.core.catalogue_doc > docs/diagnoses.md` writes
    generated = capsys.readouterr().out
    assert PAGE.read_text(encoding="utf-8") == generated, (
        "docs/diagnoses.md differs from the catalogue: run "
        "`.venv/bin/python -m dldoctor.core.catalogue_doc > docs/diagnoses.md`")


def test_every_builtin_id_has_its_section_with_title_and_fixes_in_order():
    page = catalogue_markdown(emitters={"lr-too-high": ("overfit-batch", "training-experiments")})
    headings = re.findall(r"^### (\S+)$", page, re.M)
    assert headings == list(CATALOGUE)
    section = page.split("### lr-too-high\n", 1)[1].split("\n### ", 1)[0]
    entry = CATALOGUE["lr-too-high"]
    assert f"**{_text(entry.title)}**" in section
    numbered = re.findall(r"^(\d+)\. (.+)$", section, re.M)
    assert [int(n) for n, _ in numbered] == list(range(1, len(entry.fixes) + 1))
    assert [text for _, text in numbered] == [_text(f) for f in entry.fixes]
    assert "Reported by: `overfit-batch`, `training-experiments`." in section


def test_markdown_markup_in_the_catalogue_is_escaped_but_words_stay_readable():
    assert _text("define __init__ and clip_grad_norm_(x)") == r"define \_\_init\_\_ and clip_grad_norm\_(x)"
    assert _text("[0, num_classes) * 2") == r"\[0, num_classes) \* 2"
