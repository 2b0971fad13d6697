"""What the commands share: options, the live view, output, errors and exit codes."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from dldoctor.core.errors import DldoctorError, ExitCode
from dldoctor.core.severity import FailOn
from dldoctor.render import OutputFormat

if TYPE_CHECKING:
    from rich.status import Status


class ScriptMode(str, enum.Enum):
    """``--mode``: how TARGET is examined."""

    AUTO = "auto"
    SPEC = "spec"
    SCRIPT = "script"

__all__ = ["SHARED_OPTIONS", "CommonOptions", "FailOn", "OutputFormat", "diagnosing_command", "shared_options"]

FORMAT_OPTION = typer.Option(OutputFormat.RICH, "--format", "-f", help="Output format: rich, json or markdown.")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Write the report to this file instead of stdout.",
                             dir_okay=False)
FAIL_ON_OPTION = typer.Option(FailOn.ERROR, "--fail-on",
                              help="Exit 1 when a finding at or above this severity is found (error, warning, never).")
PROFILE_OPTION = typer.Option("standard", "--profile", "-p",
                              help="Cost tier: quick, standard or thorough (how many steps and experiments).")
SELECT_OPTION = typer.Option(None, "--select",
                             help="Only these diagnosis IDs or check names (repeat or comma-separate).")
IGNORE_OPTION = typer.Option(None, "--ignore",
                             help="Skip these diagnosis IDs or check names (repeat or comma-separate).")
SEED_OPTION = typer.Option(None, "--seed", help="Seed for every experiment (default: run.seed from config, 0).")
DEVICE_OPTION = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
CONFIG_OPTION = typer.Option(None, "--config", help="A YAML file overriding thresholds and budgets.",
                             exists=False, dir_okay=False)
SPEC_OPTION = typer.Option(None, "--spec", help="The spec function: NAME, FILE.py:NAME or package.module:NAME.")
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="Show each check as it finishes.")
ALLOW_INCOMPLETE_OPTION = typer.Option(
    False, "--allow-incomplete",
    help="Exit 0 even when a check could not finish (status incomplete); by default that exits 1.")
TARGET_ARGUMENT = typer.Argument(
    None, help="The training file: one that defines dldoctor_spec(), or any training script (script mode).")
SCRIPT_ARGS_ARGUMENT = typer.Argument(
    None, metavar="SCRIPT_ARGS", show_default=False,
    help="Script mode: the script's own arguments, after --, e.g. dldoctor run train.py -- --epochs 3.")
MODULE_OPTION = typer.Option(
    None, "--module", "-m", metavar="MODULE",
    help="Script mode: run a module as python -m would (dldoctor run -m pkg.train -- --lr 0.1).")
MODE_OPTION = typer.Option(
    ScriptMode.AUTO, "--mode",
    help="spec: import TARGET and call its dldoctor_spec(); script: run it as __main__ and watch its own "
         "training loop; auto: script mode for a .py file without dldoctor_spec.")

WATCH_STEPS_OPTION = typer.Option(
    None, "--watch-steps", min=1, metavar="N",
    help="Script mode: stop the script after N optimizer steps of its own loop (default: 40 steps and past "
         "one epoch boundary, at most 200; config script.min_steps/max_steps). Steps, not seconds: the same "
         "script watched on a busy machine gives the same diagnosis.")


@dataclasses.dataclass(frozen=True)
class SharedOption:
    """One option (or the TARGET argument) that several commands take, declared once.

    Attributes:
        name: the command function's parameter name, and the :class:`CommonOptions` field.
        annotation: its type, as typer reads it.
        declaration: the ``typer.Option``/``typer.Argument``: flags, default, help.
        leading: placed before the command's own options (TARGET, ``--spec``) rather than after.
    """

    name: str
    annotation: Any
    declaration: Any
    leading: bool = False

    def parameter(self) -> inspect.Parameter:
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=self.declaration,
                                 annotation=self.annotation)


#: Every shared option, in the order ``--help`` lists them.
SHARED_OPTIONS: tuple[SharedOption, ...] = (
    SharedOption("target", str | None, TARGET_ARGUMENT, leading=True),
    SharedOption("script_args", list[str] | None, SCRIPT_ARGS_ARGUMENT, leading=True),
    SharedOption("spec", str | None, SPEC_OPTION, leading=True),
    SharedOption("fmt", OutputFormat, FORMAT_OPTION),
    SharedOption("output", Path | None, OUTPUT_OPTION),
    SharedOption("fail_on", FailOn, FAIL_ON_OPTION),
    SharedOption("profile", str, PROFILE_OPTION),
    SharedOption("select", list[str] | None, SELECT_OPTION),
    SharedOption("ignore", list[str] | None, IGNORE_OPTION),
    SharedOption("seed", int | None, SEED_OPTION),
    SharedOption("device", str, DEVICE_OPTION),
    SharedOption("config", Path | None, CONFIG_OPTION),
    SharedOption("module", str | None, MODULE_OPTION),
    SharedOption("mode", ScriptMode, MODE_OPTION),
    SharedOption("watch_steps", int | None, WATCH_STEPS_OPTION),
    SharedOption("verbose", bool, VERBOSE_OPTION),
    SharedOption("allow_incomplete", bool, ALLOW_INCOMPLETE_OPTION),
)
_SHARED_BY_NAME = {option.name: option for option in SHARED_OPTIONS}


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """The shared options' values as one command received them (the declared default
    for an option the command does not take)."""

    target: str | None
    script_args: list[str] | None
    spec: str | None
    fmt: OutputFormat
    output: Path | None
    fail_on: FailOn
    profile: str
    select: list[str] | None
    ignore: list[str] | None
    seed: int | None
    device: str
    config: Path | None
    module: str | None
    mode: ScriptMode
    watch_steps: int | None
    verbose: bool
    allow_incomplete: bool


def shared_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: a command function that takes these shared options (all when no name is given).

    The function declares only its own options, plus one parameter ``common`` that
    receives a :class:`CommonOptions`. The command typer sees takes TARGET and
    ``--spec`` first (when chosen), then the function's own options, then the other
    shared options, each with the one declaration in :data:`SHARED_OPTIONS`.
    """
    unknown = set(names) - set(_SHARED_BY_NAME)
    if unknown:
        raise ValueError(f"not shared options: {sorted(unknown)}")
    chosen = [option for option in SHARED_OPTIONS if not names or option.name in names]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(func).parameters.values() if p.name != "common"]
        if len(own) == len(inspect.signature(func).parameters):
            raise TypeError(f"{func.__name__} must take a `common` parameter (the shared options' values)")
        clash = {p.name for p in own} & set(_SHARED_BY_NAME)
        if clash:
            raise TypeError(f"{func.__name__} declares shared options itself: {sorted(clash)}")
        params = ([o.parameter() for o in chosen if o.leading] + own
                  + [o.parameter() for o in chosen if not o.leading])

        def command(**values: Any) -> Any:
            common = CommonOptions(**{o.name: values.pop(o.name) if o.name in values else o.declaration.default
                                      for o in SHARED_OPTIONS})
            return func(common=common, **values)

        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(command, attribute, getattr(func, attribute))
        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.shared_options = tuple(o.name for o in chosen)  # type: ignore[attr-defined]
        return command

    return decorate


#: Decorator of the commands that diagnose a target (run, probe, overfit-batch,
#: evaluate, data): every shared option.
diagnosing_command = shared_options()

#: Exit status after Ctrl-C, as a shell reports a process ended by SIGINT (128 + 2).
INTERRUPTED_EXIT = 130


def split_names(values: Iterable[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or ():
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(error: DldoctorError) -> NoReturn:
    """Print a user-facing error (never a dldoctor traceback) and exit with its code."""
    console = err_console()
    console.print(f"[bold red]dldoctor: error:[/] {error.message}", markup=True, soft_wrap=True)
    if error.user_traceback:
        console.print(error.user_traceback, markup=False, style="dim", soft_wrap=True)
    if error.hint:
        console.print(error.hint, markup=False, soft_wrap=True)
    raise typer.Exit(int(error.exit_code))


def write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        fail(DldoctorError(f"cannot write {output}: {exc.strerror or exc}"))
    err_console().print(f"report written to {output}", style="dim")


class LiveView:
    """Progress per stage and check on stderr while the pipeline works."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.console = err_console()
        self.status: Status | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.status = self.console.status("starting", spinner="dots")
            self.status.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def check_started(self, check) -> None:
        if self.status is not None:
            self.status.update(f"[bold]{check.stage.label}[/] · {check.name}: {check.summary()[:70]}")

    def progress(self, label: str, step: int, loss: float) -> None:
        if self.status is not None:
            self._losses = (getattr(self, "_losses", []) + [loss])[-24:] if label == getattr(self, "_label", None) \
                else [loss]
            self._label = label
            from dldoctor.readings.curves import sparkline

            self.status.update(f"[bold]overfit[/] · {label} · step {step} · loss {loss:.4g} "
                               f"{sparkline(self._losses)}")

    def reading(self, label: str, done: int, total: int) -> None:
        if self.status is not None:
            width = 24
            filled = int(width * done / total) if total > 0 else 0
            bar = "━" * filled + "[dim]" + "━" * (width - filled) + "[/dim]"
            self.status.update(f"[bold]data[/] · {label} {bar} {done}/{total} samples")

    def check_finished(self, result) -> None:
        if self.verbose:
            self.console.print(f"  {result.stage:<9} {result.name:<24} {result.status.value:<8} "
                               f"{result.duration_s:6.2f}s {result.reason}", markup=False, highlight=False)


def exit_with(code: ExitCode) -> NoReturn:
    raise typer.Exit(int(code))


def script_options(common: CommonOptions) -> dict[str, Any]:
    """The script-mode fields of ``RunOptions`` from TARGET, ``-- SCRIPT_ARGS``, ``-m`` and ``--mode``.

    With ``-m``, what click read as TARGET is the script's first argument (everything
    after ``--`` is positional).
    """
    from dldoctor.core.errors import UsageError

    args = list(common.script_args or ())
    if common.module:
        if common.mode is ScriptMode.SPEC:
            fail(UsageError("-m runs a module as a script: it cannot be combined with --mode spec"))
        if common.target is not None:
            args.insert(0, common.target)
    elif args and common.mode is ScriptMode.SPEC:
        fail(UsageError(f"script arguments ({' '.join(args)}) are for script mode; --mode spec imports the "
                        "target and calls its dldoctor_spec()"))
    return {"mode": common.mode.value, "script_args": tuple(args), "module": bool(common.module)}


def watch_overrides(common: CommonOptions) -> tuple[tuple[str, object], ...]:
    """``--watch-steps N``: the watched loop stops at exactly N optimizer steps (or earlier,
    when the script ends by itself)."""
    from dldoctor.core.config import option_overrides

    n = common.watch_steps
    return option_overrides(("--watch-steps", "script.min_steps", n), ("--watch-steps", "script.max_steps", n))
