"""``dldoctor tune``: the learning-rate range test, then a hyper-parameter search."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import fail_fatal
from dldoctor.core.errors import DldoctorError, ExitCode, UsageError
from dldoctor.core.stage import Stage
from dldoctor.render import OutputFormat


class Method(str, enum.Enum):
    """The ``--method`` choices (see ``dldoctor.tuning.search``)."""

    COARSE_TO_FINE = "coarse-to-fine"
    RANDOM = "random"
    BAYES = "bayes"
    GRID = "grid"


class TuneView(c.LiveView):
    """The live view, plus the search's progress: trial, round, best so far, ETA."""

    def trial(self, event: dict[str, Any]) -> None:
        if "confirm" in event:
            text = f"[bold]tune[/] · re-training the {event['confirm']} on seed {event['seed']}"
        else:
            best = "-" if event["best_shown"] is None else f"{event['best_shown']:.4g}"
            text = (f"[bold]tune[/] · trial {event['done']}/{event['total']} · round {event['round']} · "
                    f"best {event['metric']} {best} · ETA {event['eta_s']:.0f} s")
        if self.status is not None:
            self.status.update(text)
        elif self.verbose:
            self.console.print(text)


def render_tune(diagnosis, fmt: OutputFormat) -> str:
    """The diagnosis (this command's checks only) and, for people, the tuning report."""
    from dldoctor.render import render
    from dldoctor.tuning.view import render_markdown, render_rich

    diagnosis = dataclasses.replace(diagnosis, checks=tuple(r for r in diagnosis.checks
                                                            if r.stage == Stage.TUNE.label))
    text = render(diagnosis, fmt)
    reports = diagnosis.reports
    if fmt is OutputFormat.RICH:
        return text + "\n" + render_rich(reports.get("tuning"), reports.get("lr_range"))
    if fmt is OutputFormat.MARKDOWN:
        return text + render_markdown(reports.get("tuning"), reports.get("lr_range"))
    return text


@c.shared_options("target", "spec", "fmt", "output", "fail_on", "seed", "device", "config", "verbose")
def tune(
    common: c.CommonOptions,
    lr_finder: bool = typer.Option(False, "--lr-finder",
                                   help="Run only the learning-rate range test (no search; Optuna not needed)."),
    method: Method = typer.Option(Method.COARSE_TO_FINE, "--method",
                                  help="coarse-to-fine (rounds of random search, each inside the best trials' "
                                       "ranges), random, grid, or bayes (Optuna's TPE)."),
    # Ranges come from the config schema (tune.trials, tune.rounds), checked with the option's name.
    trials: int | None = typer.Option(None, "--trials",
                                         help="Trials in the study, all workers together (default 24)."),
    rounds: int | None = typer.Option(None, "--rounds", help="Rounds of coarse-to-fine search (default 3)."),
    storage: str | None = typer.Option(
        None, "--storage",
        help="Where trials are kept: a SQLite file (tune.db or sqlite:///tune.db) or a database URL "
             "(postgresql://user:pass@host/db) that workers on several machines share. Default: "
             "dldoctor-tune.db beside --output when given, else memory (nothing is written)."),
    study: str | None = typer.Option(None, "--study",
                                        help="Study name: workers with the same --storage and --study share trials "
                                             "(default: dldoctor-FILE-METHOD-HASH of the search space)."),
    save: Path | None = typer.Option(None, "--save", dir_okay=False,
                                        help="Write the best hyper-parameters to this YAML file."),
    plot: Path | None = typer.Option(None, "--plot", dir_okay=False,
                                        help="Draw the range test and the search to this PNG/SVG (needs matplotlib)."),
) -> None:
    """Suggest a learning rate (range test), then search the spec's search_space on validation data.

    Without a search_space the optimiser's learning rate (and weight decay) are searched around their values.
    """
    from dldoctor.core.config import option_overrides
    from dldoctor.core.runner import RunOptions, resolve_config
    from dldoctor.tuning.session import TuneRequest, tune_target
    from dldoctor.tuning.study import storage_url

    target, output, fail_on = common.target, common.output, common.fail_on
    try:
        overrides = option_overrides(("--trials", "tune.trials", trials), ("--rounds", "tune.rounds", rounds))
    except DldoctorError as exc:
        c.fail(exc)
    options = RunOptions(target=target, spec=common.spec, config_file=common.config, seed=common.seed,
                         device=common.device, overrides=overrides)
    request = TuneRequest(lr_only=lr_finder, method=method.value, storage=storage_url(storage, output), study=study)
    try:
        if save is not None and lr_finder:
            raise UsageError("--save needs a search; drop --lr-finder")
        resolved = resolve_config(dataclasses.replace(options, overrides=(("lr_finder.enabled", True), *overrides)))
        with TuneView(common.verbose) as view:
            diagnosis = tune_target(options, request, events=view)
        if diagnosis.exit_code(fail_on) is ExitCode.USAGE:
            fail_fatal(diagnosis, c.reports_of(common))
        if save is not None:
            from dldoctor.tuning.best_file import save_best

            save_best(diagnosis.reports["tuning"], str(target or common.spec), save)
        if plot is not None:
            from dldoctor.tuning.plot import plot_tuning

            plot_tuning(diagnosis.reports.get("lr_range"), diagnosis.reports.get("tuning"), plot,
                        int(resolved.get("lr_finder.smooth_fine")))
    except DldoctorError as exc:
        c.fail(exc)
    c.write_reports(diagnosis, c.reports_of(common), render_tune)
    c.exit_with(diagnosis.exit_code(fail_on))
