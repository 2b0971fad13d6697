"""The body shared by every command that diagnoses a target (run, probe, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from dldoctor.cli.common import LiveView, err_console, exit_with, fail, split_names, write_output
from dldoctor.core.errors import DldoctorError, ExitCode
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat, render


def diagnose_and_report(
    *,
    command: str,
    target: Optional[str],
    spec: Optional[str],
    fmt: OutputFormat,
    output: Optional[Path],
    fail_on: FailOn,
    profile: str,
    select: Optional[list[str]],
    ignore: Optional[list[str]],
    seed: Optional[int],
    device: str,
    config: Optional[Path],
    verbose: bool,
    stages: Optional[tuple[Stage, ...]] = None,
) -> None:
    from dldoctor.core.runner import RunOptions, diagnose, resolve_config, validate_names

    options = RunOptions(
        target=target, spec=spec, config_file=config, profile=profile, seed=seed, device=device,
        select=split_names(select), ignore=split_names(ignore), stages=stages, command=command,
    )
    try:
        validate_names(options.select, "--select")
        validate_names(options.ignore, "--ignore")
        resolved = resolve_config(options)
        with LiveView(verbose) as view:
            diagnosis = diagnose(options, events=view, config=resolved)
    except DldoctorError as exc:
        fail(exc)
    write_output(render(diagnosis, fmt), output)
    code = diagnosis.exit_code(fail_on)
    if code is ExitCode.USAGE:
        fatal = diagnosis.diagnoses[0]
        hint = fatal.fixes[0] if fatal.fixes else ""
        if fmt is not OutputFormat.RICH or output is not None:
            console = err_console()
            console.print(f"[bold red]dldoctor: error:[/] {fatal.title}", soft_wrap=True)
            if hint:
                console.print(hint, markup=False, soft_wrap=True)
    exit_with(code)
