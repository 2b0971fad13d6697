"""Spec mode or script mode: read from the file's text, without running it."""

from __future__ import annotations

import ast
from pathlib import Path

MODES = ("auto", "spec", "script")


def defines_spec(path: Path, name: str = "dldoctor_spec") -> bool:
    """Whether the file defines (or imports, or assigns) ``name`` at module level.

    Read with :mod:`ast`, so deciding runs nothing of the user's. A file that does not
    parse is left to spec mode, whose import reports the syntax error as it is.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return True
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def script_mode(target: str | None, spec_ref: str | None, mode: str, module: bool) -> bool:
    """Whether to run the target as a watched script (``--mode`` decides when it is not auto)."""
    if mode == "script" or module:
        return True
    if mode == "spec" or spec_ref or target is None:
        return False
    path = Path(target)
    return path.suffix == ".py" and path.is_file() and not defines_spec(path)
