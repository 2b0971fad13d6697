"""The options several commands share are declared once (cli/common.py), so no command drifts."""

import subprocess
import sys

import pytest
import typer.main

from dldoctor.cli import common as c
from dldoctor.cli.app import app

#: The commands that diagnose a target: each takes every shared option.
DIAGNOSING = ("run", "probe", "overfit-batch", "evaluate", "data")
#: Commands that take only some shared options (and which).
SUBSETS = {
    "tune": {"target", "spec", "fmt", "output", "fail_on", "seed", "device", "config", "verbose"},
    "bias-variance": {"fmt", "output", "fail_on", "config"},
}
#: Commands that take none: they diagnose nothing.
WITHOUT = {"checks", "explain", "diff"}

ROOT = typer.main.get_command(app)


def _shape(param):
    """What a user sees of one parameter: flags, help, default, type, multiplicity."""
    return (type(param).__name__, param.name, tuple(param.opts), tuple(param.secondary_opts),
            getattr(param, "help", None), param.default, repr(param.type_descriptor.annotation), param.multiple,
            param.required, getattr(param, "is_flag", None))


def _declared():
    """The shared options as declared once, built into click parameters through a throw-away command."""
    probe_app = typer.Typer()

    @probe_app.command()
    @c.shared_options()
    def every(common: c.CommonOptions) -> None:  # pragma: no cover - never invoked
        pass

    @probe_app.command()
    def other() -> None:  # pragma: no cover - a second command keeps the group shape
        pass

    command = typer.main.get_command(probe_app).commands["every"]
    return {p.name: _shape(p) for p in command.params}


DECLARED = _declared()


def test_every_command_is_classified():
    assert set(ROOT.commands) == set(DIAGNOSING) | set(SUBSETS) | WITHOUT, \
        "a new command: add it to DIAGNOSING (use @c.diagnosing_command) or to SUBSETS/WITHOUT"


def test_declared_shared_options_are_the_common_options_fields():
    assert list(DECLARED) == [o.name for o in c.SHARED_OPTIONS]
    # ``reports`` is read from --format and --output together, not an option of its own
    assert set(DECLARED) == set(c.CommonOptions.__dataclass_fields__) - {"reports"}
    assert "--allow-incomplete" in DECLARED["allow_incomplete"][2] and "--spec" in DECLARED["spec"][2]


@pytest.mark.parametrize("name", DIAGNOSING)
def test_diagnosing_command_exposes_every_shared_option_with_the_same_help(name):
    params = {p.name: _shape(p) for p in ROOT.commands[name].params}
    for option, shape in DECLARED.items():
        assert params.get(option) == shape, f"{name}: --{option} differs from cli/common.py's declaration"


@pytest.mark.parametrize("name", sorted(SUBSETS))
def test_subset_commands_share_the_same_declarations(name):
    params = {p.name: _shape(p) for p in ROOT.commands[name].params}
    assert set(params) & set(DECLARED) == SUBSETS[name]
    for option in SUBSETS[name]:
        assert params[option] == DECLARED[option], f"{name}: --{option} differs from cli/common.py's declaration"


@pytest.mark.parametrize("name", [*DIAGNOSING, *sorted(SUBSETS)])
def test_own_options_take_no_shared_flag(name):
    """A command's own option cannot take a shared flag (-f, -v, --seed, ...). `checks --verbose`,
    which diagnoses nothing, may mean something else."""
    flags = {flag for shape in DECLARED.values() for flag in shape[2]}
    for param in ROOT.commands[name].params:
        if param.name not in DECLARED:
            assert not flags & set(param.opts), f"{name}: {param.opts} takes a shared flag"


def test_shared_options_order_in_help():
    """TARGET, the script arguments and --spec first, then the command's own options, then the
    rest of the shared ones."""
    names = [p.name for p in ROOT.commands["probe"].params]
    assert names[:4] == ["target", "script_args", "spec", "memory_budget"]
    assert names[4:] == [o.name for o in c.SHARED_OPTIONS if not o.leading]
    # run's own option: --nproc-per-node (a distributed run)
    assert [p.name for p in ROOT.commands["run"].params] == ([o.name for o in c.SHARED_OPTIONS if o.leading]
                                                            + ["nproc_per_node"]
                                                            + [o.name for o in c.SHARED_OPTIONS if not o.leading])


def test_a_command_cannot_redeclare_a_shared_option():
    with pytest.raises(TypeError, match="declares shared options itself"):
        @c.diagnosing_command
        def bad(common: c.CommonOptions, seed: int = typer.Option(0, "--seed")) -> None:  # pragma: no cover
            pass
    with pytest.raises(TypeError, match="must take a `common` parameter"):
        @c.diagnosing_command
        def no_common(steps: int = typer.Option(0, "--steps")) -> None:  # pragma: no cover
            pass


def test_values_reach_the_command_as_common_options():
    seen = {}
    probe_app = typer.Typer()

    @probe_app.command()
    @c.shared_options("target", "fmt", "seed", "select")
    def first(common: c.CommonOptions, steps: int = typer.Option(3, "--steps")) -> None:
        seen.update(common=common, steps=steps)

    @probe_app.command()
    def second() -> None:  # pragma: no cover
        pass

    from typer.testing import CliRunner

    result = CliRunner().invoke(probe_app, ["first", "t.py", "-f", "json", "--seed", "7", "--select", "a,b",
                                            "--steps", "5"])
    assert result.exit_code == 0, result.output
    common = seen["common"]
    assert (common.target, common.fmt, common.seed, common.select, seen["steps"]) == \
        ("t.py", c.OutputFormat.JSON, 7, ["a,b"], 5)
    assert common.reports == (c.Report(c.OutputFormat.JSON, None),)
    # Options the command does not take hold their declared defaults.
    assert (common.profile, common.device, common.fail_on, common.allow_incomplete) == \
        ("standard", "auto", c.FailOn.ERROR, False)


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in (*DIAGNOSING, *SUBSETS)]],
                         ids=" ".join)
def test_help_does_not_import_torch(argv):
    """`dldoctor --help` (and each command's) stays fast: torch is imported only to diagnose."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "dldoctor", *argv],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if "torch" in line] == []
