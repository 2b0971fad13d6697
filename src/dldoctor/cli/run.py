"""``dldoctor run``: every stage, ranked diagnosis.

In a distributed run (``--nproc-per-node N``, or started by ``torchrun -m dldoctor run``) every rank
runs the script watched; rank 0 runs the checks on every rank's record and writes the one report, and
the other ranks exit with its exit code (see :mod:`dldoctor.distributed`).
"""

from __future__ import annotations

import typer

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report

NPROC_OPTION = typer.Option(
    None, "--nproc-per-node", min=1, metavar="N",
    help="Script mode: run the script in N ranks under torch's elastic launcher (torchrun), each watched; "
         "one report from rank 0, with every rank's record.")


@c.diagnosing_command
def run(common: c.CommonOptions, nproc_per_node: int | None = NPROC_OPTION) -> None:
    """Run every check on TARGET and print the ranked diagnosis."""
    from dldoctor.distributed import rank_env

    env = rank_env()
    if nproc_per_node is not None and nproc_per_node > 1 and env is None:
        _launch(nproc_per_node)
    if nproc_per_node is None and env is None:
        _launch_spec(common)  # a spec whose "distributed" asks for ranks; returns when it asks for none
    if env is None:
        diagnose_and_report(common, command="run")
        return
    _run_as_rank(common, env)


def _launch(nproc: int, ranks_argv: list[str] | None = None) -> None:
    import sys

    from dldoctor.core.errors import DldoctorError, UsageError
    from dldoctor.distributed.launch import LaunchFailed, launch, rank_argv

    argv = sys.argv[1:]
    if ranks_argv is None and "run" not in argv:
        c.fail(UsageError("--nproc-per-node needs the dldoctor command line (dldoctor run TARGET ...)"))
    try:
        code = launch(ranks_argv if ranks_argv is not None else rank_argv(argv), nproc)
    except LaunchFailed as exc:
        c.fail(DldoctorError(f"the distributed run ended without a report: {exc}",
                             hint="The ranks' own output is above; run the script with torchrun alone to see it fail."))
    raise typer.Exit(code)


def _launch_spec(common: c.CommonOptions) -> None:
    """Spec mode on a spec with ``"distributed": {"world_size": N >= 2}``: N ranks, each running dldoctor's
    own DDP loop over the spec (``-m dldoctor.distributed.spec_loop``), watched in script mode; returns
    (nothing started) for any other target. Reads the spec only when its file mentions ``distributed``."""
    from dldoctor.loading.script import script_mode

    if common.module or script_mode(common.target, common.spec, common.mode.value, False):
        return
    from dldoctor.core.errors import DldoctorError
    from dldoctor.distributed import spec_loop

    if not spec_loop.mentions_distributed(common.target, common.spec):
        return
    try:
        asked = spec_loop.read_launch(common.target, common.spec, common.device)
    except DldoctorError as exc:
        c.fail(exc)
    if asked is None:
        return
    import sys

    options = _rank_options(sys.argv[1:])
    if asked.steps is not None and not any(o.split("=", 1)[0] == "--watch-steps" for o in options):
        options += ["--watch-steps", str(asked.steps)]
    argv = ["run", "-m", spec_loop.MODULE, *options, "--",
            *spec_loop.loop_args(common.target, common.spec, asked.backend)]
    import os

    from dldoctor.distributed import REPORT_TARGET_ENV

    os.environ[REPORT_TARGET_ENV] = str(common.target or common.spec or "")  # the ranks inherit it
    _launch(asked.world_size, argv)


def _rank_options(argv: list[str]) -> list[str]:
    """The options of this ``dldoctor run`` command line that the ranks of a spec's distributed run take:
    all but ``--spec`` and ``--mode`` (the ranks run dldoctor's loop with ``-m``), without TARGET and the
    script arguments (after ``--``)."""
    from dldoctor.core.errors import UsageError

    if "run" not in argv:
        c.fail(UsageError("a spec's distributed run needs the dldoctor command line (dldoctor run SPEC.py ...)"))
    dropped: set[str] = set()
    flags: set[str] = set()
    for option in c.SHARED_OPTIONS:
        names = set(getattr(option.declaration, "param_decls", ()) or ())
        if option.name in ("spec", "mode", "module"):
            dropped |= names
        elif option.annotation is bool:
            flags |= names
    args = argv[argv.index("run") + 1:]
    out: list[str] = []
    i = 0
    while i < len(args) and args[i] != "--":
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            name = arg.split("=", 1)[0]
            width = 1 if "=" in arg or name in flags else 2
            if name not in dropped:
                out += args[i:i + width]
            i += width
        else:
            i += 1  # TARGET
    return out


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", None)
    if code is None:
        code = getattr(exc, "code", 1)
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _run_as_rank(common: c.CommonOptions, env) -> None:
    """One rank of a group: rank 0 diagnoses and reports, the others watch their script and follow."""
    import os

    from dldoctor.distributed import EXIT_FILE_ENV
    from dldoctor.distributed.exchange import exchange_for

    exit_file = os.environ.get(EXIT_FILE_ENV)
    exchange = exchange_for(env)
    exchange.announce()
    if env.leader:
        code = 1
        try:
            diagnose_and_report(common, command="run")
            code = 0
        except (typer.Exit, SystemExit) as exc:
            code = _exit_code(exc)
            if exit_file:  # under dldoctor's launcher: it exits with the code in the file
                raise typer.Exit(0) from None
            raise
        finally:
            if exit_file:
                try:
                    with open(exit_file, "w") as handle:
                        handle.write(str(code))
                except OSError:
                    pass
            exchange.publish_exit(code)
        return
    watched = _follow(common, env)
    if watched is not None:  # the last rank measures the script alone while rank 0 runs its checks
        from dldoctor.distributed import world_of_one

        world_of_one.publish(exchange, *watched)
    leader_code = exchange.wait_exit()
    if leader_code is None:
        c.err_console().print(f"dldoctor: rank {env.rank}: no exit code from rank 0", markup=False)
    if exit_file:  # under dldoctor's launcher, which exits with rank 0's code: a clean exit here
        raise typer.Exit(0)
    raise typer.Exit(1 if leader_code is None else leader_code)


def _follow(common: c.CommonOptions, env) -> tuple[str, list[str], bool] | None:
    """A rank other than 0: its script, watched; its record goes to rank 0; errors are rank 0's to report.
    The script watched (target, arguments, whether a module), or None when none was."""
    from dldoctor.core.errors import DldoctorError
    from dldoctor.core.runner import RunOptions, resolve_config, watch_rank
    from dldoctor.loading.script import script_mode

    try:
        options = RunOptions(target=common.module or common.target, spec=common.spec, config_file=common.config,
                             profile=common.profile, seed=common.seed, device=common.device, command="run",
                             overrides=c.watch_overrides(common), **c.script_options(common))
        if not script_mode(options.target, options.spec, options.mode, options.module):
            return None  # spec mode: rank 0 examines the spec alone
        watch_rank(options, resolve_config(options))
    except DldoctorError as exc:
        c.err_console().print(f"dldoctor: rank {env.rank}: {exc.message}", markup=False)
        return None
    return str(options.target), list(options.script_args), bool(options.module)
