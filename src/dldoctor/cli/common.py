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

FORMAT_OPTION = typer.Option(
    None, "--format", "-f", show_default=False,
    help="Output format: rich, json, markdown, junit, github, sarif or html (default rich). Repeat it, with "
         "--output, for several reports from one run.")
OUTPUT_OPTION = typer.Option(
    None, "--output", "-o", dir_okay=False,
    help="Write the report to this file instead of stdout. Repeatable: the i-th --output gets the i-th "
         "--format; without one, a .json, .xml (junit), .sarif, .html or .md file gets the format its suffix names.")
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
BASELINE_OPTION = typer.Option(
    None, "--baseline", metavar="FILE", dir_okay=False,
    help="Findings recorded in this baseline file are reported as known and do not trip --fail-on; "
         "new ones do; recorded ones no longer found are reported as fixed.")
WRITE_BASELINE_OPTION = typer.Option(
    None, "--write-baseline", metavar="FILE", dir_okay=False,
    help="Record this run's findings (warning and above, by ID, check and location) in FILE, to pass "
         "to --baseline later; this run then treats them as known.")
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
    SharedOption("fmt", list[OutputFormat] | None, FORMAT_OPTION),
    SharedOption("output", list[Path] | None, OUTPUT_OPTION),
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
    SharedOption("baseline", Path | None, BASELINE_OPTION),
    SharedOption("write_baseline", Path | None, WRITE_BASELINE_OPTION),
)
_SHARED_BY_NAME = {option.name: option for option in SHARED_OPTIONS}


@dataclasses.dataclass(frozen=True)
class Report:
    """One report a run writes: a format, and a file (None: stdout)."""

    fmt: OutputFormat
    path: Path | None = None


#: The format a file's suffix names, when no ``--format`` pairs with it (``.sarif.json`` is SARIF).
SUFFIX_FORMATS: dict[str, OutputFormat] = {
    ".json": OutputFormat.JSON, ".xml": OutputFormat.JUNIT, ".sarif": OutputFormat.SARIF,
    ".html": OutputFormat.HTML, ".htm": OutputFormat.HTML, ".md": OutputFormat.MARKDOWN,
    ".markdown": OutputFormat.MARKDOWN,
}


def suffix_format(path: Path) -> OutputFormat | None:
    """The format ``path``'s suffix names, or None for any other suffix."""
    name = path.name.lower()
    if name.endswith(".sarif.json"):
        return OutputFormat.SARIF
    return SUFFIX_FORMATS.get(path.suffix.lower())


def resolve_reports(formats: Iterable[OutputFormat] | None, outputs: Iterable[Path] | None) -> tuple[Report, ...]:
    """Which report goes where, from the repeated ``--format`` and ``--output`` options.

    - no ``--output``: one report on stdout (``--format``, else rich);
    - as many ``--format`` as ``--output``: paired in order;
    - otherwise each ``--output`` takes the format its suffix names (an unknown suffix
      without ``--format`` at all: rich, as before), and the one ``--format`` no file takes
      goes to stdout.

    Raises:
        UsageError: a combination that cannot be read one way only (exit 2).
    """
    from dldoctor.core.errors import UsageError

    fmts = [OutputFormat(f) for f in formats or ()]
    paths = list(outputs or ())
    choices = ", ".join(sorted(SUFFIX_FORMATS))
    repeated = sorted({str(p) for p in paths if paths.count(p) > 1})
    if repeated:
        raise UsageError(f"--output {repeated[0]} is given more than once: each report needs a file of its own")
    if not paths:
        if len(fmts) > 1:
            raise UsageError(f"{len(fmts)} --format options but no --output: only one report can go to stdout",
                             hint="Give each other format a file: --format json --output report.json "
                                  "--format junit --output report.xml")
        return (Report(fmts[0] if fmts else OutputFormat.RICH),)
    if len(fmts) == len(paths):
        reports = tuple(Report(f, p) for f, p in zip(fmts, paths, strict=True))
        for report in reports:
            named = suffix_format(report.path) if report.path is not None else None
            if named is not None and named is not report.fmt:
                raise UsageError(
                    f"--output {report.path} is paired with --format {report.fmt.value} (the i-th --format goes "
                    f"to the i-th --output), but its suffix names {named.value}",
                    hint="Put the --format options in the order of the --output files, or name the file "
                         "for its format.")
        return reports
    chosen = []
    for path in paths:
        named = suffix_format(path)
        if named is None and fmts:
            raise UsageError(
                f"cannot tell which format goes to --output {path}: {len(fmts)} --format for {len(paths)} "
                f"--output, and its suffix names none ({choices})",
                hint="Give one --format per --output, in the same order, or name each file for its format.")
        chosen.append(Report(named or OutputFormat.RICH, path))
    to_stdout = [f for f in dict.fromkeys(fmts) if all(r.fmt is not f for r in chosen)]
    if len(to_stdout) > 1:
        raise UsageError(f"--format {' and --format '.join(f.value for f in to_stdout)} have no --output: only one "
                         "report can go to stdout")
    return (*chosen, *(Report(f) for f in to_stdout))


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """The shared options' values as one command received them (the declared default
    for an option the command does not take).

    ``fmt`` and ``output`` are the first report's (for a command that writes one);
    ``reports`` are all the reports the ``--format``/``--output`` options ask for.
    """

    target: str | None
    script_args: list[str] | None
    spec: str | None
    fmt: OutputFormat
    output: Path | None
    fail_on: FailOn
    reports: tuple[Report, ...] = dataclasses.field(default=(), kw_only=True)
    """Every report to write (not an option: read from ``--format`` and ``--output``)."""
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
    baseline: Path | None
    write_baseline: Path | None


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
            given = {o.name: values.pop(o.name) if o.name in values else o.declaration.default
                     for o in SHARED_OPTIONS}
            try:
                reports = resolve_reports(given["fmt"], given["output"])
            except DldoctorError as exc:
                fail(exc)
            given["fmt"], given["output"] = reports[0].fmt, reports[0].path
            return func(common=CommonOptions(**given, reports=reports), **values)

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


def reports_of(common: CommonOptions) -> tuple[Report, ...]:
    """The reports a command's options ask for (its ``fmt`` and ``output`` when built without them)."""
    return common.reports or (Report(common.fmt, common.output),)


def write_reports(diagnosis: Any, reports: Iterable[Report],
                  renderer: Callable[[Any, OutputFormat], str] | None = None) -> None:
    """Render one diagnosis in each report's format and write it where that report goes
    (files first, then stdout). ``renderer`` defaults to :func:`dldoctor.render.render`."""
    from dldoctor.render import render

    draw = renderer or render
    reports = list(reports)
    if any(r.fmt is OutputFormat.HTML for r in reports):
        from dldoctor.render import plot_worker

        plot_worker.submit(diagnosis.series, diagnosis.reports)  # it draws while the other formats render
    # Files first, then stdout; the HTML page last among them, its figures then drawn.
    for report in sorted(reports, key=lambda r: (r.path is None, r.fmt is OutputFormat.HTML)):
        write_output(draw(diagnosis, report.fmt), report.path)


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
