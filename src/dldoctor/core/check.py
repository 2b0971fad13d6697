"""The base class every check derives from, built-in or third-party.

A check *judges*: it reads measurements from the context (which probes make once
and cache) and returns findings. It never prints and never touches the user's
objects directly: the context hands it copies.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from dldoctor.core import catalogue
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.core.context import Context

#: Requirements a check may declare; the context says whether each is met.
KNOWN_REQUIREMENTS = frozenset(
    {"forward_pass", "val_loader", "test_loader", "classification", "regression", "cuda", "reference"}
)

#: A requirement ``"config:<section>.<key>"`` is met when that config value is true
#: (e.g. a costly check that only a profile switches on).
CONFIG_REQUIREMENT = "config:"


class Check:
    """Base class of a check. Subclass it, set the class attributes, write ``run``.

    Class attributes:
        name: kebab-case name, unique among checks (``--select``/``--ignore`` use it).
        stage: the stage it belongs to.
        emits: the diagnosis IDs it may report.
        requires: context requirements (see ``KNOWN_REQUIREMENTS``, and
            ``"config:<key>"`` for a boolean setting); when one is not met the check
            is skipped with the reason.
        order: position within its stage (lower runs first).

    The first line of the docstring is the user-facing summary (``dldoctor checks``).
    """

    name: ClassVar[str] = ""
    stage: ClassVar[Stage] = Stage.RUN
    emits: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls) or cls.__dict__.get("abstract", False):
            return
        if not cls.name:
            raise TypeError(f"{cls.__qualname__}: a check needs a 'name'")
        cls.stage = Stage(cls.stage)
        unknown = [i for i in cls.emits if str(i) not in catalogue.CATALOGUE]
        if unknown:
            raise TypeError(f"{cls.__qualname__}: emits unknown diagnosis IDs {unknown}")
        cls.emits = tuple(str(i) for i in cls.emits)
        bad = [r for r in cls.requires if r not in KNOWN_REQUIREMENTS and not r.startswith(CONFIG_REQUIREMENT)]
        if bad:
            raise TypeError(f"{cls.__qualname__}: unknown requirements {bad}")

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def run(self, ctx: "Context") -> Iterable[Finding]:
        """Measure (through ``ctx``) and judge; return the findings."""
        raise NotImplementedError

    def finding(
        self,
        diagnosis_id: str,
        severity: Severity | str,
        confidence: float,
        title: str | None = None,
        evidence: Iterable[str] = (),
        fixes: Iterable[str] | None = None,
        metrics: Mapping[str, Any] | None = None,
        location: str = "",
    ) -> Finding:
        """Build a finding of this check; title and fixes default to the catalogue's."""
        diagnosis_id = str(diagnosis_id)
        if diagnosis_id not in self.emits:
            raise ValueError(f"check {self.name!r} does not declare {diagnosis_id!r} in 'emits'")
        entry = catalogue.get(diagnosis_id)
        return Finding(
            id=diagnosis_id,
            severity=Severity(severity),
            confidence=confidence,
            title=title or entry.title,
            check=self.name,
            evidence=tuple(evidence),
            fixes=tuple(fixes) if fixes is not None else entry.fixes,
            metrics=dict(metrics or {}),
            location=location,
            stage=self.stage.label,
        )
