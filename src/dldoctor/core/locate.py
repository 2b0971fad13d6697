"""Where in the user's source a finding points: a file and a line, for annotations.

After the checks ran, each finding that names no file yet gets one when dldoctor can
tell it cheaply, from what the finding already says:

- a traceback in its evidence (a crash, a broken entrypoint): the innermost frame
  in the user's own files;
- a location written ``train.py:42 ...`` (script mode, a crash site): that line;
- a module path (``fc1``, ``model[0]``, ``encoder.layers.0.linear``): the line in the
  user's class where that submodule is assigned (``self.fc1 = ...``), or the element
  of the ``nn.Sequential(...)``/list it was built in;
- ``loss`` (or ``model``): the spec's loss (model) when the user wrote its class or
  function, else the line of the spec that gives ``loss_fn`` (``model``).

Only lines in the user's files are given (never torch's or dldoctor's); anything that
cannot be read leaves the finding as it was. This never changes what was diagnosed.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dldoctor.core.finding import Finding
from dldoctor.loading.user_traceback import _is_library

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_FILE_LINE = re.compile(r"^(?P<file>[^\s:]+\.py):(?P<line>\d+)\b")
_INDEXED = re.compile(r"^model\[(?P<index>\d+)\](?:\.(?P<rest>[\w.]+))?$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.\w+)*$")

Where = tuple[str, int]


@dataclasses.dataclass(frozen=True)
class Sources:
    """What a finding's location is looked up in.

    Attributes:
        roots: the folders of the user's code (empty: any file outside the libraries).
        model: the run's model (its template), or None.
        spec: the spec (its ``model`` and ``loss_fn``), or None.
        spec_fn: the function that returned the spec, or None.
    """

    roots: tuple[Path, ...] = ()
    model: Any = None
    spec: Any = None
    spec_fn: Any = None


def locate(findings: Iterable[Finding], sources: Sources) -> tuple[Finding, ...]:
    """``findings`` with ``file`` and ``line`` filled in where they can be told."""
    out = []
    for finding in findings:
        if not finding.file:
            try:
                where = find_location(finding, sources)
            except Exception:  # pointing at a line is a courtesy; never fail the run for it
                where = None
            if where is not None:
                finding = dataclasses.replace(finding, file=where[0], line=where[1])
        out.append(finding)
    return tuple(out)


def find_location(finding: Finding, sources: Sources) -> Where | None:
    """``(file, line)`` for one finding, or None."""
    where = from_traceback(finding.evidence, sources.roots)
    if where is None:
        where = from_file_line(finding.location, sources.roots)
    location = finding.location.strip()
    if where is None and location in ("loss", "loss_fn") and sources.spec is not None:
        where = spec_value_line(getattr(sources.spec, "loss_fn", None), "loss_fn", sources)
    if where is None and sources.model is not None:
        path = module_path(location)
        if path is not None:
            where = module_line(sources.model, path, sources)
    return where


# -- small helpers -------------------------------------------------------------------------------
def is_user_file(path: str, roots: tuple[Path, ...]) -> bool:
    """An existing file of the user's: not dldoctor's, the standard library's or a package's,
    and under ``roots`` when they are given."""
    if not path or _is_library(path) or not os.path.isfile(path):
        return False
    if not roots:
        return True
    resolved = os.path.realpath(path)
    return any(resolved.startswith(str(Path(r).resolve()) + os.sep) for r in roots)


def from_traceback(evidence: Iterable[str], roots: tuple[Path, ...]) -> Where | None:
    """The innermost user frame of a traceback written into the evidence."""
    found: Where | None = None
    for text in evidence:
        for match in _FRAME.finditer(text):
            if is_user_file(match.group("file"), roots):
                found = (match.group("file"), int(match.group("line")))
    return found


def from_file_line(location: str, roots: tuple[Path, ...]) -> Where | None:
    """A location ``train.py:42 in main`` (a name as the script's frame gave it)."""
    match = _FILE_LINE.match(location.strip())
    if match is None:
        return None
    name, line = match.group("file"), int(match.group("line"))
    candidates = [name] if os.path.isabs(name) else [str(Path(r) / name) for r in roots]
    for candidate in candidates:
        if is_user_file(candidate, roots):
            return candidate, line
    return None


def module_path(location: str) -> str | None:
    """The ``named_modules`` path of a location written as a module (``""`` for the model itself)."""
    if location == "model":
        return ""
    indexed = _INDEXED.match(location)
    if indexed:
        rest = indexed.group("rest")
        return indexed.group("index") + (f".{rest}" if rest else "")
    return location if _DOTTED.match(location) else None


def _source(obj: Any, roots: tuple[Path, ...]) -> tuple[str, ast.Module, int] | None:
    """``(file, tree, first line)`` of a class or function written in the user's files."""
    try:
        file = inspect.getsourcefile(obj)
        if file is None or not is_user_file(file, roots):
            return None
        lines, start = inspect.getsourcelines(obj)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    return file, tree, max(start, 1)


def _assigns(node: ast.AST, attr: str) -> bool:
    """``self.<attr> = ...`` (also annotated), ``self.add_module("<attr>", ...)``, ``setattr(self, "<attr>", ...)``."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Attribute) and sub.attr == attr and isinstance(sub.value, ast.Name) \
                    and sub.value.id == "self":
                return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        args = call.args[1:] if name == "setattr" else call.args if name in ("add_module", "register_module") else []
        return bool(args) and isinstance(args[0], ast.Constant) and args[0].value == attr
    return False


def _element(node: ast.AST, index: int) -> ast.AST | None:
    """The ``index``-th element of the first call or list literal in ``node`` with that many
    plain positional elements (``nn.Sequential(a, b, c)``, ``nn.ModuleList([a, b])``)."""
    for sub in ast.walk(node):
        items: list[ast.expr] = []
        if isinstance(sub, ast.Call):
            items = list(sub.args)
        elif isinstance(sub, (ast.List, ast.Tuple)):
            items = list(sub.elts)
        if len(items) > index and not any(isinstance(i, ast.Starred) for i in items[:index + 1]):
            return items[index]
    return None


def _attr_statement(owner: Any, attr: str, roots: tuple[Path, ...]) -> tuple[str, ast.AST, int] | None:
    """The statement of a user-written class (or a base of it) that assigns submodule ``attr``."""
    for cls in type(owner).__mro__:
        found = _source(cls, roots)
        if found is None:
            continue
        file, tree, start = found
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and _assigns(node, attr):
                return file, node, start
    return None


def _spec_statement(key: str, sources: Sources) -> tuple[str, ast.AST, int] | None:
    """The expression that gives spec key ``key`` in the user's ``dldoctor_spec`` (a dict entry
    ``"key": ...`` or a keyword ``key=...``)."""
    found = _source(sources.spec_fn, sources.roots) if sources.spec_fn is not None else None
    if found is None:
        return None
    file, tree, start = found
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == key:
                    return file, v, start
        elif isinstance(node, ast.keyword) and node.arg == key:
            return file, node.value, start
    return None


def _factory_tree(value: Any, roots: tuple[Path, ...], depth: int = 0) -> tuple[str, ast.Module, int] | None:
    """The body of a user function that builds an object (``def make_model(): return nn.Sequential(...)``);
    through a lambda that calls one of the user's functions by name, once."""
    if not inspect.isfunction(value) or depth > 1:
        return None
    if value.__name__ == "<lambda>":
        for name in value.__code__.co_names:
            called = value.__globals__.get(name)
            if inspect.isfunction(called):
                found = _factory_tree(called, roots, depth + 1)
                if found is not None:
                    return found
        return None
    return _source(value, roots)


def spec_value_line(value: Any, key: str, sources: Sources) -> Where | None:
    """Where the spec's ``key`` (``loss_fn``, ``model``) is written: its class or function when the
    user wrote it, else the spec's line that gives it."""
    if value is not None:
        target = value if inspect.isfunction(value) or inspect.isclass(value) else type(value)
        found = _source(target, sources.roots)
        if found is not None:
            return found[0], found[2]
    statement = _spec_statement(key, sources)
    if statement is not None:
        file, node, start = statement
        return file, start + getattr(node, "lineno", 1) - 1
    return None


def module_line(model: Any, path: str, sources: Sources) -> Where | None:
    """The line where the submodule at ``path`` is created in the user's code."""
    chain = [model]
    attrs: list[str] = []
    for part in path.split(".") if path else []:
        child = getattr(chain[-1], "_modules", {}).get(part)
        if child is None:
            break  # a parameter or buffer name (``fc1.weight``): its module
        chain.append(child)
        attrs.append(part)
    if path and not attrs:
        return None  # not a module of this model (``loss``, ``data``, ...)
    return _created_at(chain, attrs, len(attrs), sources)


def _created_at(chain: list[Any], attrs: list[str], depth: int, sources: Sources) -> Where | None:
    """Where ``chain[depth]`` (reached through ``attrs[:depth]``) is created."""
    statement = _statement_for(chain, attrs, depth, sources)
    if statement is None:
        return None
    file, node, start = statement
    return file, start + getattr(node, "lineno", 1) - 1


def _statement_for(chain: list[Any], attrs: list[str], depth: int,
                   sources: Sources) -> tuple[str, ast.AST, int] | None:
    if depth == 0:  # the model itself: the user's class, or what their factory or spec builds
        spec_model = getattr(sources.spec, "model", None)
        target = spec_model if inspect.isclass(spec_model) or inspect.isfunction(spec_model) else type(chain[0])
        found = _source(target, sources.roots)
        if found is not None and inspect.isclass(target):
            file, tree, start = found
            return file, tree.body[0] if tree.body else tree, start
        factory = _factory_tree(spec_model, sources.roots)
        if factory is not None:
            file, tree, start = factory
            returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return) and n.value is not None]
            return file, (returns[0] if returns else tree.body[0] if tree.body else tree), start
        return _spec_statement("model", sources)
    parent, attr = chain[depth - 1], attrs[depth - 1]
    own = _attr_statement(parent, attr, sources.roots)
    if own is not None:
        return own
    if attr.isdigit():  # an element of a container: the element inside the statement that built the container
        above = _statement_for(chain, attrs, depth - 1, sources)
        if above is None:
            return None
        file, node, start = above
        element = _element(node, int(attr))
        return file, (element if element is not None else node), start
    return _statement_for(chain, attrs, depth - 1, sources)  # built inside a library module: where that is
