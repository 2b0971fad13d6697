"""Import the user's target and call its spec function, as the contract says.

The target file is imported as a module (never as ``__main__``, so a script's own
training under ``if __name__ == "__main__":`` does not run), with the file's folder
first on ``sys.path``. Every problem becomes an :class:`EntrypointError` with a
short message, the lines to add, and the user's traceback trimmed to their frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.script.record import WatchedLoop
from dldoctor.loading.spec import SPEC_SNIPPET, Spec, spec_parameters, validate_spec
from dldoctor.loading.user_traceback import format_user_traceback

if TYPE_CHECKING:
    from dldoctor.loading.script.watch import Budget

DEFAULT_SPEC_NAME = "dldoctor_spec"


@dataclasses.dataclass
class LoadedTarget:
    """The user's entrypoint, imported and validated.

    Attributes:
        spec: the validated spec.
        target: how the user named it (for reports).
        spec_fn: the spec function (called again with hyper-parameters when tuning).
        hparams: the keyword arguments it was called with.
        user_roots: folders holding the user's code (for trimming tracebacks).
        watched: in script mode, what watching the script's own loop recorded (a
            :class:`~dldoctor.loading.script.record.WatchedLoop`); None in spec mode.
        spec_problem: in script mode, why no spec could be built from what was watched
            (``spec`` is then None and only the watched-loop checks run), or "".
        spec_applies: False when the staged checks do not apply to the script (several
            optimizers train different modules, as in a GAN): their skipping is then
            no gap in coverage.
    """

    spec: Spec | None
    target: str
    spec_fn: Callable[..., Any]
    hparams: dict[str, Any]
    user_roots: tuple[Path, ...]
    watched: WatchedLoop | None = None
    spec_problem: str = ""
    spec_applies: bool = True

    def built_spec(self) -> Spec:
        """The spec; an :class:`EntrypointError` where script mode could build none."""
        if self.spec is None:
            raise EntrypointError(f"{self.target}: {self.spec_problem or 'no spec'}", hint=SPEC_SNIPPET)
        return self.spec


def _module_name_for(path: Path) -> str:
    # The plain stem keeps the module importable by name (pickling in DataLoader
    # workers); fall back to a private name when it would shadow another module.
    stem = path.stem if path.stem.isidentifier() else "_dldoctor_target"
    existing = sys.modules.get(stem)
    if existing is None or getattr(existing, "__file__", None) == str(path):
        return stem
    return f"_dldoctor_target_{stem}"


def import_file(path: Path, roots: tuple[Path, ...]) -> ModuleType:
    """Import ``path`` as a module whose ``__name__`` is not ``__main__``."""
    if not path.exists():
        raise EntrypointError(f"file not found: {path}", hint="Pass the path of your training file, e.g. "
                              "dldoctor run examples/digits/train.py")
    if path.is_dir():
        raise EntrypointError(f"{path} is a folder; dldoctor needs the Python file that defines dldoctor_spec()",
                              hint=f"e.g. dldoctor run {path / 'train.py'}")
    if path.suffix != ".py":
        raise EntrypointError(f"{path} is not a Python file (.py)")
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name_for(path.resolve())
    module_spec = importlib.util.spec_from_file_location(name, path.resolve())
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - .py files always get a loader
        raise EntrypointError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise EntrypointError(
            f"{path} has a syntax error at line {exc.lineno}: {exc.msg}",
            user_traceback=format_user_traceback(exc, roots),
        ) from None
    except BaseException as exc:  # the user's import-time code raised (or exited)
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise EntrypointError(
            f"importing {path} raised {type(exc).__name__}: {exc}",
            hint="dldoctor imports your file as a module: keep training code under "
                 "`if __name__ == \"__main__\":` and make the import itself cheap and side-effect free.",
            user_traceback=format_user_traceback(exc, roots),
        ) from None
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise EntrypointError(f"cannot import module {name!r}: {exc}",
                              hint="Run dldoctor from the folder that holds the package, or install it.") from None
    except Exception as exc:
        raise EntrypointError(f"importing module {name!r} raised {type(exc).__name__}: {exc}",
                              user_traceback=format_user_traceback(exc)) from None


def resolve_spec_function(target: str | None, spec_ref: str | None) -> tuple[Callable[..., Any], str, tuple[Path, ...]]:
    """Find the spec function from a target file and/or ``--spec``.

    ``--spec`` may be ``FILE.py:NAME``, ``package.module:NAME``, or just ``NAME``
    (a function in the target file).
    """
    file_part: str | None = target
    name = DEFAULT_SPEC_NAME
    module: ModuleType | None = None
    if spec_ref:
        left, sep, right = spec_ref.rpartition(":")
        if not sep:
            name = spec_ref
        elif left.endswith(".py") or "/" in left or "\\" in left:
            file_part, name = left, right
        else:
            module = _import_module(left)
            name = right
            file_part = None
        if not name.isidentifier():
            raise EntrypointError(f"--spec {spec_ref!r}: {name!r} is not a function name",
                                  hint="Use --spec FILE.py:NAME or --spec package.module:NAME")
    roots: tuple[Path, ...] = ()
    if module is None:
        if not file_part:
            raise EntrypointError("no target given", hint="dldoctor run path/to/train.py   "
                                  "(or --spec package.module:NAME)")
        path = Path(file_part)
        roots = (path.resolve().parent,)
        module = import_file(path, roots)
        where = str(path)
    else:
        where = module.__name__
        file = getattr(module, "__file__", None)
        if file:
            roots = (Path(file).resolve().parent,)
    fn = getattr(module, name, None)
    if fn is None:
        raise EntrypointError(
            f"{where} has no function {name}()",
            hint="Add a function that tells dldoctor what to examine:\n\n"
                 f"{SPEC_SNIPPET.replace(DEFAULT_SPEC_NAME, name)}",
        )
    if not callable(fn):
        raise EntrypointError(f"{where}: {name} is a {type(fn).__name__}, not a function", hint=SPEC_SNIPPET)
    return fn, where, roots


def call_spec_function(
    fn: Callable[..., Any], where: str, roots: tuple[Path, ...], hparams: Mapping[str, Any] | None = None
) -> Spec:
    """Call the spec function (with hyper-parameters, if any) and validate what it returns."""
    hparams = dict(hparams or {})
    accepted = spec_parameters(fn)
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    required = [n for n, p in params.items() if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY, p.KEYWORD_ONLY)]
    if required:
        raise EntrypointError(f"{where}: {fn.__name__}() has parameters without defaults: {', '.join(required)}",
                              hint="dldoctor calls it with no arguments; give every parameter a default, e.g. "
                                   "def dldoctor_spec(lr=1e-3, width=64):")
    unknown = [k for k in hparams if k not in accepted and not any(p.kind == p.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise EntrypointError(f"{where}: {fn.__name__}() has no keyword argument {unknown[0]!r}",
                              hint=f"Its keyword arguments: {', '.join(accepted) or '(none)'}")
    try:
        raw = fn(**hparams)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise EntrypointError(
            f"{where}: {fn.__name__}() raised {type(exc).__name__}: {exc}",
            user_traceback=format_user_traceback(exc, roots),
        ) from None
    return validate_spec(raw, origin=f"{where}: {fn.__name__}()")


def with_hparams(base: LoadedTarget, hparams: Mapping[str, Any], seed: int) -> LoadedTarget:
    """``base`` with its spec function called again on ``hparams`` under ``seed`` (a tuning
    trial, a larger-model variant)."""
    from dldoctor.runtime.rng import isolated_rng  # numpy and torch: not on the CLI's start-up path

    with isolated_rng(seed), target_argv(base.target):
        spec = call_spec_function(base.spec_fn, base.target, base.user_roots, hparams)
    return dataclasses.replace(base, spec=spec, hparams=dict(hparams))


@contextlib.contextmanager
def target_argv(program: str) -> Iterator[None]:
    """``sys.argv`` is ``[program]`` inside the block, as ``python program`` would give it.

    A script that parses its command line at import (``argparse`` at module level, or
    in ``dldoctor_spec``) must see its own arguments, not dldoctor's (``run``,
    ``--format json``, ...): it would otherwise print its own usage error. Restored
    afterwards, whatever happens.
    """
    saved = sys.argv
    sys.argv = [program]
    try:
        yield
    finally:
        sys.argv = saved


def load_target(target: str | None, spec_ref: str | None = None,
                hparams: Mapping[str, Any] | None = None) -> LoadedTarget:
    """Import the target, call its spec function and validate the spec."""
    program = target or (spec_ref or "").rpartition(":")[0] or (spec_ref or "")
    with target_argv(program):
        fn, where, roots = resolve_spec_function(target, spec_ref)
        spec = call_spec_function(fn, where, roots, hparams)
    return LoadedTarget(spec=spec, target=target or spec_ref or where, spec_fn=fn,
                        hparams=dict(hparams or {}), user_roots=roots)


def load_script(target: str, args: tuple[str, ...] = (), module: bool = False,
                budget: Budget | None = None, step_monitor: Callable[[Any], Any] | None = None) -> LoadedTarget:
    """Run ``target`` as a watched script (script mode) and return the spec built from it.

    ``step_monitor``: ``device -> monitor`` that times and reads the memory of each of the
    loop's steps (``probes.resources.monitor.StepMonitor``; None: not measured).
    """
    from dldoctor.loading.script.execute import watch_script
    from dldoctor.loading.script.to_spec import build_spec

    watcher = watch_script(target, args, module, budget, step_monitor)
    record = watcher.record
    roots = (Path(target).resolve().parent,) if not module else (Path.cwd(),)
    stepping = [o for o in record.optimizers if o.steps >= 2]
    if len(stepping) >= 2:
        problem = (f"{len(stepping)} optimizers ({', '.join(o.class_name for o in stepping)}) train different "
                   "parts in turn (adversarial or multi-model training): dldoctor's own experiments train one "
                   "model on one loss, so only the watched-loop checks apply")
        return LoadedTarget(spec=None, target=record.script, spec_fn=_no_spec, hparams={}, user_roots=roots,
                            watched=record, spec_problem=problem, spec_applies=False)
    try:
        spec = build_spec(watcher)
    except EntrypointError as exc:
        if not (record.steps or record.backwards):
            raise
        return LoadedTarget(spec=None, target=record.script, spec_fn=_no_spec, hparams={}, user_roots=roots,
                            watched=record, spec_problem=exc.message.removeprefix(f"{record.script}: "))

    def watched_spec(**hparams: Any) -> Spec:
        if hparams:
            raise EntrypointError(f"{watcher.record.script}: hyper-parameters ({', '.join(hparams)}) need a "
                                  "dldoctor_spec function taking them (script mode has none)", hint=SPEC_SNIPPET)
        return spec

    return LoadedTarget(spec=spec, target=watcher.record.script, spec_fn=watched_spec, hparams={},
                        user_roots=roots, watched=watcher.record)


def _no_spec(**hparams: Any) -> Spec:
    raise EntrypointError("script mode built no spec from this script", hint=SPEC_SNIPPET)
