"""The pytest plugin: ``pytest --dldoctor train.py`` runs dldoctor's checks as tests.

Registered under the ``pytest11`` entry point ``dldoctor``; inactive unless asked:

* ``--dldoctor PATH`` (repeatable) diagnoses each training file; ``--dldoctor`` with no
  path diagnoses the ``dldoctor_targets`` of the ini file (``[tool.pytest.ini_options]``
  in pyproject.toml, pytest.ini, ...), or else ``[tool.dldoctor] targets`` of the
  pyproject.toml (paths relative to it); ``dldoctor_collect = true`` in the ini collects
  them on every run, without the flag;
* each target gives one test per check of the chosen stages, with node IDs such as
  ``train.py::dldoctor::overfit-batch``, plus ``train.py::dldoctor::entrypoint``.
  A target is diagnosed once per session, when its first test runs. A test fails when
  its check found something at or above ``--dldoctor-fail-on`` (default ``error``; known
  findings of ``--dldoctor-baseline`` and ones the spec accepts never fail), is skipped
  with the check's reason when the check did not run, and fails when the target cannot
  be loaded. The failure text is each finding's title, evidence and fixes;
* ``--dldoctor-stages run,overfit`` and ``--dldoctor-profile quick`` keep it cheap.

pytest's own ``-k``, ``-m dldoctor``, ``-x`` and ``--junitxml`` apply to these tests as
to any other. The ``dldoctor`` fixture gives a test :class:`dldoctor.testing.Doctor`.

Importing this module imports neither torch nor the checks: a session without the
flag pays nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.testing import Doctor

_FAIL_ON = ("error", "warning", "never")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dldoctor", "dldoctor: diagnose training files as tests")
    group.addoption("--dldoctor", action="append", nargs="?", const="", default=None, metavar="TARGET",
                    dest="dldoctor_targets",
                    help="Diagnose this training file, one test per check (repeatable). Without a path: the "
                         "ini option dldoctor_targets. Put it after the test paths, or write --dldoctor=PATH.")
    group.addoption("--dldoctor-stages", default=None, metavar="STAGES",
                    help="Only these stages, comma-separated (run, overfit, compare, data, evaluate, tune; "
                         "default: the ini's dldoctor_stages, else every stage but tune).")
    group.addoption("--dldoctor-profile", default=None, metavar="PROFILE",
                    help="Cost tier: quick, standard or thorough (default: ini dldoctor_profile, else standard).")
    group.addoption("--dldoctor-fail-on", default=None, choices=_FAIL_ON,
                    help="A check's test fails on a finding at or above this severity (default: ini "
                         "dldoctor_fail_on, else error).")
    group.addoption("--dldoctor-baseline", default=None, metavar="FILE",
                    help="A baseline file (dldoctor run --write-baseline): the findings it records do not fail.")
    group.addoption("--dldoctor-device", default="auto", metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")
    parser.addini("dldoctor_targets", "training files pytest --dldoctor diagnoses", type="linelist", default=[])
    parser.addini("dldoctor_collect", "diagnose dldoctor_targets on every run, without --dldoctor",
                  type="bool", default=False)
    parser.addini("dldoctor_stages", "stages pytest --dldoctor runs, comma-separated", default="")
    parser.addini("dldoctor_profile", "cost tier of pytest --dldoctor", default="standard")
    parser.addini("dldoctor_fail_on", "severity at which a dldoctor test fails", default="error")


class _Settings:
    """What this session asked dldoctor for, resolved from the flags and the ini file."""

    def __init__(self, config: pytest.Config):
        given: list[str] | None = config.getoption("dldoctor_targets")
        from_ini = [str(t) for t in config.getini("dldoctor_targets")] or _pyproject_targets(config)
        if given is None:
            targets = from_ini if config.getini("dldoctor_collect") else []
        else:
            targets = [t for t in given if t]
            if "" in given:
                if not from_ini:
                    raise pytest.UsageError("--dldoctor without a path reads the ini option dldoctor_targets, "
                                            "which is not set: give a path (--dldoctor train.py) or set "
                                            "dldoctor_targets in [tool.pytest.ini_options]")
                targets += from_ini
        self.targets = list(dict.fromkeys(targets))
        stages = config.getoption("dldoctor_stages") or str(config.getini("dldoctor_stages")) or ""
        self.stages = tuple(s.strip() for s in stages.split(",") if s.strip())
        self.profile = config.getoption("dldoctor_profile") or str(config.getini("dldoctor_profile"))
        self.fail_on = config.getoption("dldoctor_fail_on") or str(config.getini("dldoctor_fail_on"))
        if self.fail_on not in _FAIL_ON:
            raise pytest.UsageError(f"dldoctor_fail_on must be one of {', '.join(_FAIL_ON)}, got {self.fail_on!r}")
        self.baseline: str | None = config.getoption("dldoctor_baseline")
        self.device: str = config.getoption("dldoctor_device")
        self.root = Path(config.rootpath)
        self.cache: dict[str, Diagnosis] = {}

    def chosen_stages(self) -> tuple[Any, ...]:
        from dldoctor.core.stage import Stage

        try:
            if self.stages:
                return tuple(Stage.parse(s) for s in self.stages)
        except ValueError as exc:
            raise pytest.UsageError(f"--dldoctor-stages: {exc}") from None
        return tuple(s for s in Stage if s is not Stage.TUNE)

    def resolve(self, target: str) -> Path:
        path = Path(target)
        return path if path.is_absolute() else (Path(os.getcwd()) / path)

    def diagnosis(self, target: str) -> Diagnosis:
        """The target's diagnosis, run once per session."""
        if target not in self.cache:
            from dldoctor.testing import diagnose

            self.cache[target] = diagnose(str(self.resolve(target)), stages=[s.label for s in self.chosen_stages()],
                                          profile=self.profile, device=self.device, baseline=self.baseline)
        return self.cache[target]


def _pyproject_targets(config: pytest.Config) -> list[str]:
    """``[tool.dldoctor] targets`` of the pyproject.toml at or above pytest's rootdir."""
    from dldoctor.core.config import pyproject_targets
    from dldoctor.core.errors import ConfigError

    try:
        return pyproject_targets(Path(config.rootpath))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


_SETTINGS = pytest.StashKey[_Settings]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dldoctor: a test that pytest --dldoctor made from one dldoctor check")
    settings = _Settings(config)
    if settings.targets:
        config.stash[_SETTINGS] = settings


class DldoctorFailure(Exception):
    """A check's test failed: the text is what the report shows."""


class TargetFile(pytest.File):
    """A training file pytest --dldoctor diagnoses."""

    target: str = ""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return [ChecksOf.from_parent(self, name="dldoctor", target=self.target)]


class ChecksOf(pytest.Collector):
    """The checks run on one target: one test each."""

    def __init__(self, *, target: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.target = target
        self.names: set[str] = set()

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        from dldoctor.core.registry import discover

        settings = self.config.stash[_SETTINGS]
        stages = set(settings.chosen_stages())
        registered, _ = discover()
        items: list[pytest.Item | pytest.Collector] = [
            CheckItem.from_parent(self, name="entrypoint", target=self.target, check="", summary="load the target")]
        for r in registered:
            if r.check.stage in stages:
                items.append(CheckItem.from_parent(self, name=r.check.name, target=self.target, check=r.check.name,
                                                   summary=r.check.summary()))
                self.names.add(r.check.name)
        return items


class CheckItem(pytest.Item):
    """One dldoctor check on one target (``check`` "" for loading the target itself)."""

    def __init__(self, *, target: str, check: str, summary: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.target = target
        self.check = check
        self.summary = summary
        self.add_marker("dldoctor")

    def runtest(self) -> None:
        from dldoctor.core.diagnosis import CheckStatus
        from dldoctor.testing import describe, failing_findings

        settings = self.config.stash[_SETTINGS]
        diagnosis = settings.diagnosis(self.target)
        fatal = [f for f in diagnosis.diagnoses if f.id == "entrypoint-error" or f.metrics.get("fatal")]
        if fatal:
            if self.check and not any(self.check in f.checks for f in fatal):
                raise DldoctorFailure(f"not run: dldoctor could not load {self.target}: {fatal[0].title} "
                                      "(see its dldoctor::entrypoint test)")
            raise DldoctorFailure(describe(fatal, self.target))
        if not self.check:
            unowned = self._unowned(diagnosis, settings.fail_on)
            if unowned:
                raise DldoctorFailure(describe(unowned, self.target))
            return
        result = next((c for c in diagnosis.checks if c.name == self.check), None)
        if result is None:
            pytest.skip(f"{self.check} did not run")
        failing = failing_findings(diagnosis, settings.fail_on, check=self.check)
        if failing:
            raise DldoctorFailure(describe(failing, self.target))
        if result.status is CheckStatus.ERRORED:
            gaps = [f for f in diagnosis.diagnoses if f.id == "check-incomplete" and self.check in f.checks]
            raise DldoctorFailure(describe(gaps, self.target) if gaps else f"{self.check} could not finish: "
                                  f"{result.reason}")
        if result.status is CheckStatus.SKIPPED:
            pytest.skip(result.reason or f"{self.check} was skipped")

    def _unowned(self, diagnosis: Diagnosis, fail_on: str) -> list[Any]:
        """Failing findings of no check collected here (plugins that failed to load, a
        script whose training step could not be rebuilt): the entrypoint test reports them."""
        from dldoctor.testing import failing_findings

        mine: set[str] = getattr(self.parent, "names", set())
        gaps = [f for f in diagnosis.diagnoses if f.id == "check-incomplete"]
        return [f for f in [*failing_findings(diagnosis, fail_on), *gaps] if not set(f.checks) & mine]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        if isinstance(excinfo.value, DldoctorFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"dldoctor::{self.name}"


def _nodeid(settings: _Settings, target: str) -> str:
    path = settings.resolve(target)
    try:
        return path.resolve().relative_to(settings.root.resolve()).as_posix()
    except ValueError:
        return Path(target).as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the dldoctor tests before ``-k``/``-m`` deselect (those hooks run after this one)."""
    settings = config.stash.get(_SETTINGS, None)
    if settings is None:
        return
    for target in settings.targets:
        path = settings.resolve(target)
        if not path.exists():
            raise pytest.UsageError(f"--dldoctor {target}: no such file")
        node = TargetFile.from_parent(session, path=path, nodeid=_nodeid(settings, target))
        node.target = target
        for group in node.collect():
            assert isinstance(group, ChecksOf)
            items.extend(i for i in group.collect() if isinstance(i, pytest.Item))


@pytest.fixture
def dldoctor() -> Doctor:
    """A :class:`dldoctor.testing.Doctor`: ``dldoctor.diagnose(target, **options)`` and
    ``dldoctor.assert_healthy(target, stages=..., ignore=..., fail_on="warning")``."""
    from dldoctor.testing import Doctor

    return Doctor()
