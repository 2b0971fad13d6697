"""The pipeline: run the selected checks stage by stage on one shared context.

Each check is isolated: an exception becomes an ``errored`` result and the run goes
on; a check that needs something the context cannot give (a forward pass that
crashed, a validation loader the spec lacks) is ``skipped`` with the reason; each
check runs under a wall-clock budget.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, Protocol

from dldoctor.core.check import Check
from dldoctor.core.diagnosis import CheckResult, CheckStatus
from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.core.finding import Finding
from dldoctor.core.registry import run_order
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage

if TYPE_CHECKING:
    from dldoctor.core.context import Context
    from dldoctor.core.diagnosis import Diagnosis


#: Findings about the run itself (the user's entrypoint, what could not be checked):
#: kept whatever --select/--ignore say.
COVERAGE_IDS = frozenset({"check-incomplete", "entrypoint-error"})


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during the checks, carrying what was found before it.

    A KeyboardInterrupt, so that code that lets Ctrl-C through still does. ``diagnosis``
    is set by the runner once the partial findings are ranked.
    """

    def __init__(self, findings: list[Finding], results: list[CheckResult], during: str = ""):
        super().__init__(during)
        self.findings = findings
        self.results = results
        self.during = during
        self.diagnosis: Diagnosis | None = None


class CheckTimeout(BaseException):
    """Raised inside a check that ran past its budget.

    A BaseException, so that user code with ``except Exception`` cannot swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread on POSIX only; else a no-op)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable or seconds is None:  # (usable implies a number: the second test is for mypy)
        yield
        return

    def _alarm(signum: int, frame: FrameType | None) -> NoReturn:
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which checks run and which findings are kept (``--select``, ``--ignore``, stages).

    Each name in ``select``/``ignore`` is a check name or a diagnosis ID. Selecting an
    ID runs the checks that may emit it and keeps only findings with selected IDs.
    """

    select: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    stages: frozenset[Stage] | None = None

    def _selected_ids(self, check_names: set[str]) -> set[str]:
        return {s for s in self.select if s not in check_names}

    def skip_reason(self, check: type[Check], check_names: set[str]) -> str | None:
        if self.stages is not None and check.stage not in self.stages:
            return f"stage {check.stage.label} is not part of this command"
        if check.name in self.ignore:
            return "ignored by --ignore"
        if self.select:
            ids = self._selected_ids(check_names)
            if check.name not in self.select and not ids.intersection(check.emits):
                return "not selected by --select"
        return None

    def keeps(self, finding: Finding, check_names: set[str]) -> bool:
        if finding.id in self.ignore:
            return False
        ids = self._selected_ids(check_names)
        selected_checks = self.select & check_names
        return not (ids and finding.id not in ids and not any(c in selected_checks for c in finding.checks))


class Events(Protocol):
    """What the pipeline tells a live view (all methods optional in practice)."""

    def check_started(self, check: type[Check]) -> None: ...

    def check_finished(self, result: CheckResult) -> None: ...


class _NoEvents:
    def check_started(self, check: type[Check]) -> None:
        pass

    def check_finished(self, result: CheckResult) -> None:
        pass


def _entrypoint_finding(check: type[Check], exc: EntrypointError) -> Finding:
    """The user's spec, factory or loader raised while a check took what it needs: the
    same broken entrypoint as one that raises up front, so it is fatal (exit 2)."""
    evidence = [exc.message]
    if exc.user_traceback:
        evidence.append(exc.user_traceback)
    return Finding(
        id="entrypoint-error", severity=Severity.ERROR, confidence=1.0,
        title=exc.message,
        check=check.name, evidence=tuple(evidence), fixes=(exc.hint,) if exc.hint else (),
        metrics={"fatal": True}, location="spec", stage=check.stage.label,
    )


def incomplete_finding(check: type[Check], reason: str, *, location: str = "", user_traceback: str = "",
                       user_code: bool = False) -> Finding:
    """``check-incomplete``: ``check`` could not finish, so its part of the diagnosis is missing."""
    from dldoctor.core import catalogue

    evidence = [f"{check.name} ({check.stage.label} stage) did not finish: {reason}",
                f"not checked: {', '.join(check.emits) or check.name}"]
    if user_traceback:
        evidence.append(user_traceback)
    fixes = catalogue.get("check-incomplete").fixes
    if not user_code:
        fixes = fixes[1:]
    return Finding(
        id="check-incomplete", severity=Severity.WARNING, confidence=1.0,
        title=f"{check.name} could not finish: {reason}", check=check.name, evidence=tuple(evidence),
        fixes=fixes, metrics={"fatal": user_code, "user_code": user_code}, location=location or check.name,
        stage=check.stage.label,
    )


def _crash_finding(ctx: Context, check: type[Check], exc: Exception) -> Finding:
    """A check raised: the user's code (a loader, a model's forward on another split) when
    the innermost frames are theirs, otherwise dldoctor's own failure."""
    from dldoctor.loading.user_traceback import exception_line, format_user_traceback, innermost_user_frame

    roots = tuple(getattr(getattr(ctx, "loaded", None), "user_roots", ()) or ())
    where = innermost_user_frame(exc, roots, strict=True) if roots else ""
    if where:
        return incomplete_finding(check, f"your code raised {exception_line(exc)} ({where})", location=where,
                                  user_traceback=format_user_traceback(exc, roots))
    return incomplete_finding(check, f"dldoctor's check raised {exception_line(exc)}")


def run_checks(
    ctx: Context, checks: Iterable[type[Check]], selection: Selection = Selection(), events: Events | None = None,
) -> tuple[list[Finding], list[CheckResult]]:
    """Run ``checks`` in order on ``ctx``; return all kept findings and per-check results."""
    events = events or _NoEvents()
    checks = run_order(checks, strict=False)
    names = {c.name for c in checks}
    timeout = float(ctx.config.get("run.check_timeout_s"))
    findings: list[Finding] = []
    results: list[CheckResult] = []
    for check_cls in checks:
        try:
            _run_one(ctx, check_cls, selection, names, timeout, events, findings, results)
        except KeyboardInterrupt as exc:
            if isinstance(exc, RunInterrupted):
                raise
            raise RunInterrupted(findings, results, during=check_cls.name) from None
    return findings, results


def _run_one(ctx: Context, check_cls: type[Check], selection: Selection, names: set[str], timeout: float,
             events: Events,
             findings: list[Finding], results: list[CheckResult]) -> None:
    """Run one check (or skip it with the reason); append its findings and result."""
    reason = selection.skip_reason(check_cls, names)
    if reason is None and ctx.loaded.spec is None and "script" not in check_cls.requires:
        reason = ctx.loaded.spec_problem  # script mode: only the watched-loop checks have something to read
    if reason is None:
        for requirement in check_cls.requires:
            try:
                reason = ctx.unmet(requirement)
            except EntrypointError as exc:
                reason = f"{requirement}: {exc.message}"
            if reason:
                break
    if reason is not None:
        result = CheckResult(check_cls.name, check_cls.stage.label, CheckStatus.SKIPPED, 0.0, reason)
        results.append(result)
        events.check_finished(result)
        return
    events.check_started(check_cls)
    start = time.perf_counter()
    ctx.deadline = time.monotonic() + timeout
    ctx.running_check = check_cls.name
    produced: list[Finding] = []
    status, why = CheckStatus.PASSED, ""
    try:
        with time_limit(timeout):
            produced = list(check_cls().run(ctx) or ())
    except CheckTimeout:
        why = f"ran past its safety limit of {timeout:g} s (run.check_timeout_s)"
        status, produced = CheckStatus.ERRORED, [incomplete_finding(check_cls, why)]
    except CheckIncomplete as exc:
        status, why = CheckStatus.ERRORED, exc.reason
        produced = [incomplete_finding(check_cls, exc.reason, location=exc.location,
                                       user_traceback=exc.user_traceback, user_code=exc.user_code)]
    except EntrypointError as exc:
        produced = [_entrypoint_finding(check_cls, exc)]
        status, why = CheckStatus.ERRORED, exc.message
    except Exception as exc:  # a crashed check is a result, not an abort
        status, why = CheckStatus.ERRORED, f"{type(exc).__name__}: {exc}"
        produced = [_crash_finding(ctx, check_cls, exc)]
    finally:
        ctx.deadline = None
        ctx.running_check = ""
    produced = [dataclasses.replace(f, stage=f.stage or check_cls.stage.label, check=f.check or check_cls.name)
                for f in produced]
    # Coverage is never filtered away: --ignore/--select choose checks and IDs to
    # look for, not whether the report admits that a check could not finish.
    kept = [f for f in produced if f.id in COVERAGE_IDS or selection.keeps(f, names)]
    if status is CheckStatus.PASSED and any(f.severity.at_least(Severity.WARNING) for f in kept):
        status = CheckStatus.FAILED
    ctx.findings.extend(kept)
    findings.extend(kept)
    result = CheckResult(check_cls.name, check_cls.stage.label, status, time.perf_counter() - start, why)
    results.append(result)
    events.check_finished(result)
