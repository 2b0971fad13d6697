"""The final diagnosis of a run: ranked findings, check results, and run facts."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from dldoctor.core.errors import ExitCode
from dldoctor.core.finding import Finding
from dldoctor.core.severity import FailOn, Severity


class CheckStatus(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERRORED = "errored"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """How one check went."""

    name: str
    stage: str
    status: CheckStatus
    duration_s: float = 0.0
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CheckStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "status": self.status.value,
                "duration_s": round(self.duration_s, 4), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(name=data["name"], stage=data["stage"], status=data["status"],
                   duration_s=float(data.get("duration_s", 0.0)), reason=data.get("reason", ""))


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Everything a renderer needs; round-trips through JSON (the output contract)."""

    dldoctor_version: str
    target: str
    diagnoses: tuple[Finding, ...]
    checks: tuple[CheckResult, ...] = ()
    seed: int = 0
    device: str = "cpu"
    duration_s: float = 0.0
    command: str = "run"
    profile: str = "standard"
    reports: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Structured reports beside the findings (e.g. ``bias_variance``), plain data."""
    measurements: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Numbers the run measured, by name (``memory.max_batch``): each a plain
    :meth:`dldoctor.core.measurement.Measurement.to_dict` (value, unit, noise, better,
    check, title). Not findings: ``dldoctor diff`` compares them between two reports."""
    series: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Curves the run recorded, as plain numbers, for the HTML report's plots (the single-batch
    losses, the short run's epochs, memory and step time): see :mod:`dldoctor.render.series`.
    Written to the JSON report only when there is one."""
    baseline: Mapping[str, Any] | None = None
    """With ``--baseline``: ``{"file", "known", "new", "fixed": [{"id", "check", "location"}]}``
    (:func:`dldoctor.core.baseline.apply_baseline`); None otherwise, and then not in the JSON."""

    @property
    def watched_text(self) -> str:
        """Script mode: how much of the script's own loop was watched ("" in spec mode)."""
        loop = self.reports.get("watched_loop")
        if not loop:
            return ""
        how = {"budget": "stopped at the step budget", "finished": "the script ended by itself",
               "raised": "the script raised"}.get(loop.get("stopped", ""), loop.get("stopped", ""))
        return f"script mode: watched {loop.get('steps_watched', 0)} optimizer steps of {loop.get('script')} ({how})"

    @property
    def interrupted(self) -> bool:
        """The run was stopped (Ctrl-C) before every check had run: a partial report."""
        return bool(self.reports.get("interrupted"))

    @property
    def incomplete(self) -> bool:
        """Some check could not finish (or the run was interrupted): part of the diagnosis is missing."""
        return (self.interrupted or any(f.id == "check-incomplete" for f in self.diagnoses)
                or self.nothing_checked)

    @property
    def nothing_checked(self) -> bool:
        """Checks were registered but every one was skipped: nothing was examined, so the
        run cannot be called healthy (e.g. a selection whose requirements were all unmet)."""
        return bool(self.checks) and all(c.status is CheckStatus.SKIPPED for c in self.checks)

    @property
    def status(self) -> str:
        """``error`` > ``incomplete`` > ``warning`` > ``healthy``: a run that could not
        check everything is never ``healthy``, whatever the other checks found."""
        worst = max((f.severity.rank for f in self.diagnoses if f.id != "check-incomplete"), default=-1)
        if worst >= Severity.ERROR.rank:
            return "error"
        if self.incomplete:
            return "incomplete"
        if worst >= Severity.WARNING.rank:
            return "warning"
        return "healthy"

    @property
    def coverage(self) -> dict[str, Any]:
        """What was checked: how many checks passed, failed, were skipped or errored, and which errored."""
        counts = {s.value: 0 for s in CheckStatus}
        for c in self.checks:
            counts[c.status.value] += 1
        return {"checks": len(self.checks), **counts,
                "incomplete": sorted(c.name for c in self.checks if c.status is CheckStatus.ERRORED),
                "interrupted": self.interrupted}

    def exit_code(self, fail_on: FailOn, allow_incomplete: bool = False) -> ExitCode:
        """2 when the user's entrypoint is broken (whichever factory, loader or batch shows it),
        1 when a finding trips ``fail_on`` or part of the run could not be checked (unless
        ``allow_incomplete``), else 0. Findings known from a baseline or accepted by the spec
        (:attr:`Finding.waived`) do not trip ``fail_on``; a fatal one always exits 2."""
        if any(f.id == "entrypoint-error" or f.metrics.get("fatal") for f in self.diagnoses):
            return ExitCode.USAGE
        if any(fail_on.trips(f.severity) for f in self.diagnoses if f.id != "check-incomplete" and not f.waived):
            return ExitCode.FINDINGS
        if self.incomplete and not allow_incomplete:
            return ExitCode.FINDINGS
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "dldoctor_version": self.dldoctor_version,
            "target": self.target,
            "status": self.status,
            "coverage": self.coverage,
            "diagnoses": [f.to_dict() for f in self.diagnoses],
            "checks": [c.to_dict() for c in self.checks],
            "seed": self.seed,
            "device": self.device,
            "duration_s": round(self.duration_s, 4),
            "command": self.command,
            "profile": self.profile,
            "reports": dict(self.reports),
            "measurements": {name: dict(m) for name, m in self.measurements.items()},
            **({"series": dict(self.series)} if self.series else {}),
            **({"baseline": dict(self.baseline)} if self.baseline is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(
            dldoctor_version=data["dldoctor_version"],
            target=data["target"],
            diagnoses=tuple(Finding.from_dict(d) for d in data.get("diagnoses", ())),
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks", ())),
            seed=int(data.get("seed", 0)),
            device=data.get("device", "cpu"),
            duration_s=float(data.get("duration_s", 0.0)),
            command=data.get("command", "run"),
            profile=data.get("profile", "standard"),
            reports=dict(data.get("reports", {})),
            measurements={str(k): dict(v) for k, v in dict(data.get("measurements") or {}).items()},
            series=dict(data.get("series") or {}),
            baseline=dict(data["baseline"]) if data.get("baseline") is not None else None,
        )
