"""The package's layers, read from the source: every import points to its own layer or a lower one.

From top to bottom:

    cli       the command line
    app       what runs a diagnosis or a tuning session: core.runner, core.pipeline, testing,
              the package root, render, tuning
    checks    judge: Check classes only, grouped by stage; they import dldoctor.api only
    api       the public, typed surface for check authors (dldoctor.api and its
              submodules): it re-exports what lies below it
    readings  pure interpretation of measurements: verdicts and wording
    probes    measure: run the model on copies, read the data
    core      the context, config, findings, catalogue, the Check base class...
    loading   the user's code and data: entrypoint, spec, metrics logs, the guarded reader
    runtime   helpers below everything: RNG isolation, tensors, byte sizes (and core.errors)

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "dldoctor"

#: (layer, module prefixes), top first; a module belongs to the layer of its longest prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("dldoctor.cli", "dldoctor.__main__")),
    ("app", ("dldoctor", "dldoctor.core.runner", "dldoctor.core.pipeline", "dldoctor.render", "dldoctor.tuning",
             "dldoctor.testing")),
    ("checks", ("dldoctor.checks",)),
    ("api", ("dldoctor.api",)),
    ("readings", ("dldoctor.readings",)),
    ("probes", ("dldoctor.probes",)),
    ("core", ("dldoctor.core", "dldoctor.schema")),
    ("loading", ("dldoctor.loading", "dldoctor.distributed")),
    ("runtime", ("dldoctor.runtime", "dldoctor.core.errors")),
)
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

#: Upward imports that remain, each with its reason. Keep this list short.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # The context memoises the traced first training step and the gradient pass that
    # several checks share; its requirement "forward_pass" and its task and class-count
    # inference read the trace. Both imports are lazy (inside the methods).
    ("dldoctor.core.context", "dldoctor.probes.forward_trace"):
        "Context.forward_trace() / unmet('forward_pass') / task inference trace the first step",
    ("dldoctor.core.context", "dldoctor.probes.gradients"):
        "Context.grad_flow() memoises the gradient pass gradient-flow and numerics share",
    ("dldoctor.core.context", "dldoctor.probes.keys"):
        "the context memoises its trace, gradient passes, task and classes under built-in keys, declared "
        "(typed by the probes' results) with the other measurement keys",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            exact_root = prefix == "dldoctor"
            matches = module == prefix if exact_root else (module == prefix or module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def imported_modules(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, dldoctor module) for every import in the file, wherever it is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "dldoctor"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "dldoctor":
                continue
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.append((node.lineno, candidate if candidate in MODULES else source))
    return found


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_point_to_the_same_layer_or_below():
    violations, used = [], set()
    for module, path in MODULES.items():
        own = RANK[layer_of(module)]
        for line, target in imported_modules(module, path):
            if RANK[layer_of(target)] >= own:
                continue
            if (module, target) in ALLOWED_UPWARD:
                used.add((module, target))
                continue
            violations.append(f"{path.relative_to(SRC)}:{line}: {module} ({layer_of(module)}) imports "
                              f"{target} ({layer_of(target)})")
    assert not violations, "imports against the layering:\n" + "\n".join(violations)
    assert used == set(ALLOWED_UPWARD), f"stale allow-list entries: {sorted(set(ALLOWED_UPWARD) - used)}"


def test_checks_import_only_the_public_api():
    """A built-in check uses what a plugin can: ``dldoctor.api`` and its submodules (plus
    the standard library, torch, numpy), never dldoctor's internals or another check."""
    violations = []
    for module, path in MODULES.items():
        if not module.startswith("dldoctor.checks."):
            continue
        for line, target in imported_modules(module, path):
            if target != "dldoctor.api" and not target.startswith("dldoctor.api."):
                violations.append(f"{path.relative_to(SRC)}:{line}: imports {target}")
    assert not violations, "checks import dldoctor's internals (expose it in dldoctor.api):\n" + "\n".join(violations)


def test_importing_the_api_does_not_import_torch():
    """``import dldoctor.api`` stays light: plugins and tools may read it without torch."""
    import subprocess
    import sys

    code = "import sys, dldoctor.api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


CHECK_MODULES = sorted(m for m, p in MODULES.items() if m.startswith("dldoctor.checks.") and p.name != "__init__.py")


@pytest.mark.parametrize("module", CHECK_MODULES)
def test_every_module_under_checks_defines_a_check(module):
    from dldoctor.core.check import Check

    mod = importlib.import_module(module)
    defined = [obj for _, obj in inspect.getmembers(mod, inspect.isclass)
               if issubclass(obj, Check) and obj is not Check and obj.__module__ == module]
    assert defined, f"{module} defines no Check subclass: move it to probes/ (it measures) or readings/ (it reads)"
