"""The body shared by every command that diagnoses a target (run, probe, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dldoctor.cli.common import (
    CommonOptions,
    LiveView,
    Report,
    exit_with,
    fail,
    reports_of,
    script_options,
    split_names,
    watch_overrides,
    write_reports,
)
from dldoctor.core.baseline import load_baseline
from dldoctor.core.errors import DldoctorError, ExitCode
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat


def diagnose_and_report(
    common: CommonOptions,
    *,
    command: str,
    stages: tuple[Stage, ...] | None = None,
    overrides: tuple[tuple[str, object], ...] = (),
    plot: Path | None = None,
) -> None:
    from dldoctor.core.runner import RunOptions, diagnose, resolve_config, validate_names

    reports, fail_on = reports_of(common), common.fail_on
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
        known = load_baseline(common.baseline) if common.baseline is not None else None
        validate_names(options.select, "--select")
        validate_names(options.ignore, "--ignore")
        resolved = resolve_config(options)
        measurements: dict | None = {} if plot is not None else None
        prewarm_plots(reports)
        with LiveView(common.verbose) as view:
            diagnosis = diagnose(options, events=view, config=resolved, measurements=measurements)
        if plot is not None and diagnosis.exit_code(fail_on) is not ExitCode.USAGE:
            from dldoctor.render.plots import plot_curves

            plot_curves(measurements or {}, plot, title=str(common.target or common.spec))
    except DldoctorError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        interrupted(getattr(exc, "diagnosis", None), reports)
    if diagnosis.exit_code(fail_on) is ExitCode.USAGE:
        fail_fatal(diagnosis, reports)
    diagnosis = with_baseline(diagnosis, common, known)
    code = diagnosis.exit_code(fail_on, common.allow_incomplete)
    write_reports(diagnosis, reports)  # the checks ran once: every format renders the same diagnosis
    exit_with(code)


def prewarm_plots(reports) -> None:
    """With an HTML report to write, start the process that draws its figures now: it loads
    matplotlib while the checks run (see :mod:`dldoctor.render.plot_worker`)."""
    if any(r.fmt is OutputFormat.HTML for r in reports):
        from dldoctor.render import plot_worker
        from dldoctor.render.figures import have_matplotlib

        if have_matplotlib():
            plot_worker.start()


def with_baseline(diagnosis, common: CommonOptions, known):
    """``--write-baseline FILE`` records this run's findings there; ``--baseline FILE`` (read
    before the run, as ``known``) marks each finding known or new and lists the fixed ones.
    With only ``--write-baseline``, the run is compared with the baseline it just wrote (every
    finding known); with both, with the one it read."""
    from dldoctor.core.baseline import apply_baseline, baseline_of, write_baseline

    try:
        if common.write_baseline is not None:
            write_baseline(diagnosis, common.write_baseline)
            from dldoctor.cli.common import err_console

            written = baseline_of(diagnosis)
            err_console().print(f"baseline of {len(written.entries)} finding(s) written to {common.write_baseline}",
                                style="dim")
            if known is None:
                return apply_baseline(diagnosis, written, str(common.write_baseline))
    except DldoctorError as exc:
        fail(exc)
    if known is None:
        return diagnosis
    return apply_baseline(diagnosis, known, str(common.baseline))


def _machine(reports: Sequence[Report]) -> list[Report]:
    """The reports still written when no full diagnosis is: every file, and stdout unless rich
    (the message on stderr says it for people)."""
    return [r for r in reports if r.path is not None or r.fmt is not OutputFormat.RICH]


def interrupted(partial, reports: Sequence[Report]) -> None:
    """Ctrl-C: one line on stderr; every requested file (and a machine format on stdout) gets
    the partial report (status incomplete, marked interrupted); exit 130 as for any process
    ended by SIGINT."""
    from dldoctor.cli.common import INTERRUPTED_EXIT, err_console

    done = f" after {len(partial.checks)} check(s)" if partial is not None else " before any check ran"
    err_console().print(f"dldoctor: interrupted{done}; the diagnosis is incomplete.", markup=False)
    if partial is not None:
        write_reports(partial, _machine(reports))
    raise SystemExit(INTERRUPTED_EXIT)


def fail_fatal(diagnosis, reports: Sequence[Report]) -> None:
    """dldoctor could not run: the message goes to stderr; machine formats still get
    their report (with the fatal finding) where they asked for it."""
    write_reports(diagnosis, _machine(reports))
    fatal = next(f for f in diagnosis.diagnoses if f.id == "entrypoint-error" or f.metrics.get("fatal"))
    fail(DldoctorError(fatal.title, hint=fatal.fixes[0] if fatal.fixes else "",
                       user_traceback="\n".join(e for e in fatal.evidence[1:] if "\n" in e or "Error" in e)))
