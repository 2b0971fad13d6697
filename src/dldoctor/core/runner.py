"""One diagnosis run, end to end: load, prepare, run checks, rank.

The CLI commands are thin wrappers around :func:`diagnose`; tests and other tools
can call it directly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dldoctor import __version__
from dldoctor.core.baseline import apply_accept
from dldoctor.core.config import Config, load_config
from dldoctor.core.diagnosis import CheckResult, CheckStatus, Diagnosis
from dldoctor.core.errors import EntrypointError
from dldoctor.core.finding import Finding
from dldoctor.core.pipeline import Events, RunInterrupted, Selection, run_checks
from dldoctor.core.ranking import rank
from dldoctor.core.registry import discover, failure_finding, plugin_ownership
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage

if TYPE_CHECKING:
    import torch

    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import LoadedTarget
    from dldoctor.loading.script.watch import Budget


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What to diagnose and how (the CLI's options, resolved)."""

    target: str | None
    spec: str | None = None
    config_file: Path | None = None
    profile: str = "standard"
    seed: int | None = None
    device: str = "auto"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    stages: tuple[Stage, ...] | None = None
    command: str = "run"
    overrides: tuple[tuple[str, object], ...] = ()
    """Config values set by command-line flags, as (dotted key, value); applied last."""
    mode: str = "auto"
    """``spec``, ``script`` or ``auto`` (script mode for a ``.py`` file without ``dldoctor_spec``)."""
    script_args: tuple[str, ...] = ()
    """The script's own arguments (after ``--``), in script mode."""
    module: bool = False
    """``target`` is a module name to run as ``python -m`` would (script mode)."""


def resolve_config(options: RunOptions) -> Config:
    folder = None
    if options.target:
        path = Path(options.target)
        folder = (path.parent if path.suffix else path).resolve()
    config = load_config(folder, options.config_file, options.profile)
    overrides = options.overrides
    if options.seed is not None:  # --seed goes through the same schema as run.seed in a config file
        overrides = (("run.seed", options.seed), *overrides)
    if overrides:
        from dldoctor.core.config import merge

        nested: dict[str, Any] = {}
        for dotted, value in overrides:
            node = nested
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        config = Config(merge(dict(config.values), nested, "command-line options"), config.profile,
                        config.sources + ("command line",))
    return config


def unrebuilt_finding(problem: str) -> Finding:
    """``check-incomplete`` for a watched script whose training step dldoctor could not rebuild:
    the watched-loop checks ran, the staged ones (overfitting, baselines, data) did not."""
    from dldoctor.core import catalogue
    from dldoctor.loading.spec import SPEC_SNIPPET

    return catalogue.coverage_gap(
        f"only the watched-loop checks ran: {problem}", check="load-entrypoint",
        evidence=(problem, "not checked: everything dldoctor's own runs look for (stages 1-5 beyond the user's loop)"),
        fixes=("Write a dldoctor_spec() in the script (spec mode) so that every stage can run:\n" + SPEC_SNIPPET,),
        location="entrypoint")


def watch_rank(options: RunOptions, config: Config) -> None:
    """A rank other than 0 of a distributed run: run and watch the script as rank 0 does (its record goes to
    rank 0 through :mod:`dldoctor.distributed.exchange`), and nothing else: rank 0 runs the checks.

    Raises :class:`EntrypointError` as loading the script would.
    """
    from dldoctor.loading.script.execute import watch_script
    from dldoctor.probes.resources.monitor import StepMonitor
    from dldoctor.runtime.rng import isolated_rng

    seed = int(options.seed) if options.seed is not None else int(config.get("run.seed"))
    with isolated_rng(None), isolated_rng(seed):
        watch_script(str(options.target), options.script_args, options.module, script_budget(config),
                     step_monitor=StepMonitor, follower=True)


def script_budget(config: Config) -> Budget:
    """How long script mode watches the user's loop (the ``script`` config section)."""
    from dldoctor.loading.script.watch import Budget

    return Budget(min_steps=int(config.get("script.min_steps")), max_steps=int(config.get("script.max_steps")),
                  after_boundary=int(config.get("script.after_boundary")),
                  max_backwards=int(config.get("script.max_backwards")),
                  hang_s=float(config.get("script.hang_s")))


def entrypoint_diagnosis(options: RunOptions, error: EntrypointError, seed: int, started: float) -> Diagnosis:
    """The diagnosis of a run that could not start: one fatal ``entrypoint-error``."""
    evidence = [error.message] + ([error.user_traceback] if error.user_traceback else [])
    finding = Finding(
        id="entrypoint-error", severity=Severity.ERROR, confidence=1.0, title=error.message,
        check="load-entrypoint", evidence=tuple(evidence), fixes=(error.hint,) if error.hint else (),
        metrics={"fatal": True}, location="entrypoint", stage=Stage.RUN.label, rank=1,
    )
    from dldoctor.core.locate import Sources, locate

    located = locate((finding,), Sources())  # the line of the user's code the traceback ends in
    return Diagnosis(__version__, options.target or options.spec or "", located, (), seed, "cpu",
                     time.perf_counter() - started, options.command, options.profile)


def diagnose(options: RunOptions, events: Events | None = None, config: Config | None = None,
             measurements: dict[str, Any] | None = None, loaded: LoadedTarget | None = None) -> Diagnosis:
    """Run dldoctor on a target and return the ranked diagnosis.

    Entrypoint problems (the file, the spec, the model factory, the training loader)
    do not raise: they come back as a diagnosis whose only finding is a fatal
    ``entrypoint-error`` (exit code 2). When ``measurements`` is a dict, it receives
    the context's measurements and the checks' published results by key name
    (``key.name``: curves, traces) for plots and tools.
    ``loaded`` is the target when the caller has already loaded it (under the run's
    seed), so the user's file is not imported twice.
    """
    started = time.perf_counter()
    config = config or resolve_config(options)
    if options.seed is not None and not 0 <= options.seed < 2**32:
        from dldoctor.core.errors import ConfigError

        raise ConfigError(f"--seed {options.seed} is out of range: must be >= 0 and < 2**32")
    seed = int(options.seed) if options.seed is not None else int(config.get("run.seed"))
    # Heavy imports stay here, off the CLI's start-up path.
    from dldoctor.core.context import Context, resolve_device
    from dldoctor.loading.entrypoint import load_script, load_target
    from dldoctor.loading.script import script_mode
    from dldoctor.probes.resources.monitor import StepMonitor
    from dldoctor.runtime.rng import isolated_rng

    device = resolve_device(options.device)
    # The user's random streams are put back afterwards, whatever the checks drew;
    # the import itself runs seeded, so module-level models are deterministic too.
    with isolated_rng(None):
        try:
            if loaded is None:
                with isolated_rng(seed):
                    if script_mode(options.target, options.spec, options.mode, options.module):
                        loaded = load_script(str(options.target), options.script_args, options.module,
                                             script_budget(config), step_monitor=StepMonitor)
                    else:
                        loaded = load_target(options.target, options.spec)
            accept = _accepted(loaded)
            ctx = Context(loaded, config, device, seed)
            ctx.prepare()
        except EntrypointError as exc:
            return entrypoint_diagnosis(options, exc, seed, started)
        try:
            return apply_accept(_run(options, ctx, seed, device, started, events), accept)
        finally:
            if measurements is not None:
                measurements.update(ctx.measurements.by_name())
                measurements.update(ctx.results.by_name())


def _run(options: RunOptions, ctx: Context, seed: int, device: torch.device, started: float,
         events: Events | None) -> Diagnosis:
    ctx.progress = getattr(events, "progress", None)
    ctx.reading = getattr(events, "reading", None)
    registered, failures = discover()
    selection = Selection(frozenset(options.select), frozenset(options.ignore),
                          frozenset(options.stages) if options.stages else None)
    interrupted: RunInterrupted | None = None
    checks = [r.check for r in registered]
    if ctx.watched is not None and ctx.watched.hang is not None:
        # The ranks hung: the hang is the finding to fix first, and the checks that read the watched loop
        # say what else it showed; dldoctor's own runs of the model wait until the hang is fixed.
        checks = [c for c in checks if "script" in getattr(c, "requires", ())]
    try:
        findings, results = run_checks(ctx, checks, selection, events)
    except RunInterrupted as exc:
        interrupted, findings, results = exc, exc.findings, exc.results
    results += [CheckResult(f"plugin:{f.name}", "-", CheckStatus.ERRORED, 0.0, f.error) for f in failures]
    findings = [*findings, *(failure_finding(f) for f in failures)]  # the run is incomplete
    if ctx.loaded.spec is None and ctx.loaded.spec_applies:
        findings.append(unrebuilt_finding(ctx.loaded.spec_problem))
    reports = ctx.reports.by_name()
    if ctx.watched is not None:
        reports["watched_loop"] = ctx.watched.summary()
        if ctx.watched.ranks:
            reports["ranks"] = rank_summary(ctx.watched.ranks)
            if ctx.watched.hang is not None:
                reports["ranks"]["hang"] = ctx.watched.hang  # every rank's place and stack
    if interrupted is not None:
        reports["interrupted"] = {"during": interrupted.during, "checks_done": len(results)}
    diagnosis = Diagnosis(
        dldoctor_version=__version__, target=_report_target(options),
        diagnoses=_located(rank(findings, plugin_checks=plugin_ownership(registered)), ctx), checks=tuple(results),
        seed=seed, device=str(device),
        duration_s=time.perf_counter() - started, command=options.command, profile=options.profile,
        reports=reports,
        series=_series(ctx),
        measurements={name: m.to_dict() for name, m in ctx.recorded.items()},
    )
    if interrupted is not None:
        interrupted.diagnosis = diagnosis
        raise interrupted
    return diagnosis


def _report_target(options: RunOptions) -> str:
    """What the user named: the target, or the spec a distributed spec run's ranks loop over."""
    import os

    from dldoctor.distributed import REPORT_TARGET_ENV, rank_env

    named = os.environ.get(REPORT_TARGET_ENV)
    if named and rank_env() is not None:
        return named
    return str(options.target or options.spec or "")


def rank_summary(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """What the report says about each rank of a distributed run (the bulky per-step lists left out)."""
    keep = ("rank", "missing", "steps", "stopped", "error", "ddp", "wrapper", "model", "per_rank_batch",
            "step_s", "wait_s", "forward_s", "sampler", "batch_norm")
    return {"world_size": len(ranks),
            "per_rank": [{k: r[k] for k in keep if k in r} for r in ranks]}


def _series(ctx: Context) -> dict[str, Any]:
    """The curves the checks recorded, as plain data for the HTML report's plots. Drawing
    material only: a failure here must not cost the user the diagnosis, so it gives none."""
    from dldoctor.render.series import collect

    try:
        return collect(ctx)
    except Exception:
        return {}


def _accepted(loaded: LoadedTarget) -> dict[str, str]:
    """The spec's ``accept`` (diagnosis ID -> reason), its IDs checked against the catalogue."""
    spec = loaded.spec
    if spec is None or not spec.accept:
        return {}
    from dldoctor.core.baseline import check_accept

    return check_accept(spec.accept)


def _located(findings: tuple[Finding, ...], ctx: Context) -> tuple[Finding, ...]:
    """The findings with the file and line of the user's code they point at, where known."""
    from dldoctor.core.locate import Sources, locate

    model = None
    if ctx.loaded.spec is not None:
        try:
            model = ctx.template_model()  # built once already, while preparing
        except Exception:  # no model, no module lines; the findings stand as they are
            model = None
    return locate(findings, Sources(roots=tuple(ctx.user_roots), model=model, spec=ctx.loaded.spec,
                                    spec_fn=ctx.loaded.spec_fn))


def known_check_names() -> set[str]:
    registered, _ = discover()
    return {r.check.name for r in registered}


def validate_names(names: Iterable[str], flag: str) -> None:
    """Reject ``--select``/``--ignore`` names that are neither a check nor a diagnosis ID."""
    from dldoctor.core import catalogue
    from dldoctor.core.errors import UsageError

    checks = None
    for name in names:
        if name in catalogue.CATALOGUE:
            continue
        checks = checks if checks is not None else known_check_names()  # loads plugins and their IDs
        if name in checks or catalogue.known(name):
            continue
        close = catalogue.closest(name) or sorted(checks)[:3]
        raise UsageError(f"{flag} {name!r} is neither a diagnosis ID nor a check name",
                         hint=f"Did you mean: {', '.join(close)}? (dldoctor checks lists them)")
