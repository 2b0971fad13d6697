"""The body shared by every command that diagnoses a target (run, probe, ...)."""

from __future__ import annotations

from pathlib import Path

from dldoctor.cli.common import (
    CommonOptions,
    LiveView,
    exit_with,
    fail,
    script_options,
    split_names,
    watch_overrides,
    write_output,
)
from dldoctor.core.errors import DldoctorError, ExitCode
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat, render


def diagnose_and_report(
    common: CommonOptions,
    *,
    command: str,
    stages: tuple[Stage, ...] | None = None,
    overrides: tuple[tuple[str, object], ...] = (),
    plot: Path | None = None,
) -> None:
    from dldoctor.core.runner import RunOptions, diagnose, resolve_config, validate_names

    fmt, output, fail_on = common.fmt, common.output, common.fail_on
    try:
        overrides = (*overrides, *watch_overrides(common))
    except DldoctorError as exc:
        fail(exc)
    options = RunOptions(
        target=common.module or common.target, spec=common.spec, config_file=common.config, profile=common.profile,
        seed=common.seed, device=common.device, select=split_names(common.select),
        ignore=split_names(common.ignore), stages=stages, command=command, overrides=overrides,
        **script_options(common),
    )
    try:
        validate_names(options.select, "--select")
        validate_names(options.ignore, "--ignore")
        resolved = resolve_config(options)
        measurements: dict | None = {} if plot is not None else None
        with LiveView(common.verbose) as view:
            diagnosis = diagnose(options, events=view, config=resolved, measurements=measurements)
        if plot is not None and diagnosis.exit_code(fail_on) is not ExitCode.USAGE:
            from dldoctor.render.plots import plot_curves

            plot_curves(measurements or {}, plot, title=str(common.target or common.spec))
    except DldoctorError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        interrupted(getattr(exc, "diagnosis", None), fmt, output)
    code = diagnosis.exit_code(fail_on, common.allow_incomplete)
    if code is ExitCode.USAGE:
        fail_fatal(diagnosis, fmt, output)
    write_output(render(diagnosis, fmt), output)
    exit_with(code)


def interrupted(partial, fmt: OutputFormat, output: Path | None) -> None:
    """Ctrl-C: one line on stderr; with --output, the partial report (status incomplete,
    marked interrupted) is written there; exit 130 as for any process ended by SIGINT."""
    from dldoctor.cli.common import INTERRUPTED_EXIT, err_console

    done = f" after {len(partial.checks)} check(s)" if partial is not None else " before any check ran"
    err_console().print(f"dldoctor: interrupted{done}; the diagnosis is incomplete.", markup=False)
    if partial is not None and output is not None:
        write_output(render(partial, fmt), output)
    raise SystemExit(INTERRUPTED_EXIT)


def fail_fatal(diagnosis, fmt: OutputFormat, output: Path | None) -> None:
    """dldoctor could not run: the message goes to stderr; machine formats still get
    their report (with the fatal finding) where they asked for it."""
    if fmt is not OutputFormat.RICH or output is not None:
        write_output(render(diagnosis, fmt), output)
    fatal = next(f for f in diagnosis.diagnoses if f.id == "entrypoint-error" or f.metrics.get("fatal"))
    fail(DldoctorError(fatal.title, hint=fatal.fixes[0] if fatal.fixes else "",
                       user_traceback="\n".join(e for e in fatal.evidence[1:] if "\n" in e or "Error" in e)))
