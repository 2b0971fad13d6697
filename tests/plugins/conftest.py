"""Fake installed plugins: a folder on sys.path with modules and a ``*.dist-info`` declaring entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """``install_plugin(dist, {entry name: "module:Attr"}, {module: source})`` -> the folder to put on PYTHONPATH.

    The folder goes on ``sys.path`` for this test; the modules and the plugins' registrations
    (catalogue entries, config sections) are removed afterwards.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def _install(dist: str, entries: dict[str, str], sources: dict[str, str]) -> Path:
        for module, source in sources.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = "".join(f"{name} = {ref}\n" for name, ref in entries.items())
        (info / "entry_points.txt").write_text(f"[dldoctor.checks]\n{lines}")
        return site

    yield _install
    for module in modules:
        sys.modules.pop(module, None)
    from dldoctor.core.registry import load_plugins

    load_plugins(enabled=False)  # forget their IDs and config sections
