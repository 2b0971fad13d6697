"""The base class every check derives from, built-in or third-party.

A check *judges*: it reads measurements from the context (which probes make once
and cache) and returns findings. It never prints and never touches the user's
objects directly: the context hands it copies.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from dldoctor.core import catalogue as _catalogue
from dldoctor.core.catalogue import DiagnosisInfo
from dldoctor.core.finding import Finding
from dldoctor.core.judgement import Judgement
from dldoctor.core.keys import Key, Store
from dldoctor.core.measurement import Better, Measurement
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import torch
    from torch import nn

    from dldoctor.core.config import Config
    from dldoctor.loading.script.record import WatchedLoop
    from dldoctor.loading.spec import Spec

T = TypeVar("T")


class CheckContext(Protocol):
    """What a check may use from the context it is given (``run(self, ctx)``).

    The same context serves every check of a run: the model is built once under the
    run's seed and handed out as fresh copies, batches are read once per split and
    cached, and measurements are memoised by typed key, so two checks that need the
    same measurement pay for it once. A check never trains or changes the user's
    objects: it works on what the context hands out.

    Keys are :class:`dldoctor.api.Key` objects, never strings: the built-in ones are in
    :mod:`dldoctor.api.keys` (``ctx.measure(keys.LOSS_PROBE, ...)``, ``keys.TRAINING_FRACTION.at(0.5)``),
    and a plugin declares its own once, at module level, with the value's type::

        LOGIT_STATS: Key[LogitStats] = Key("my_plugin:logit_stats", "the logits at init")
        stats = ctx.measure(LOGIT_STATS, lambda: logit_stats(ctx.fresh_model(), ctx.first_batch()))

    A key equals only itself (and its own ``at(...)`` forms), so a plugin's key never
    meets a built-in one, whatever its name; prefix the name with the plugin's anyway,
    since names are what people and tools see.

    Attributes:
        config: the resolved configuration; ``ctx.config.section("my_check")`` or
            ``ctx.config.get("my_check.threshold")`` (a plugin's own section included).
        spec: what the user's ``dldoctor_spec()`` returned (read-only): ``model``,
            ``train_loader``, ``loss_fn``, ``optimizer``, ``val_loader``, ...
        device: where models and batches live (a ``torch.device``).
        seed: the run's seed; start every random experiment from it.
        findings: the findings of the checks that already ran, in run order.
        reports: sections of the JSON report's ``reports``, by key (the key's name is
            the section's): ``ctx.reports[MY_REPORT] = {...}`` (plain JSON data).
        results: what a check publishes for later checks, by key: a check that reads
            one declares the publisher in ``after`` (see :class:`Check`).
        user_roots: the folders of the user's code (to tell their frames from others).
        forward_fn: ``forward_fn(model, batch) -> (outputs, targets)``: the spec's
            ``forward``, or ``model(inputs), targets`` for an ``(inputs, targets)`` batch.
    """

    config: Config
    spec: Spec
    device: torch.device
    seed: int
    findings: list[Finding]
    reports: Store
    results: Store
    forward_fn: Callable[[nn.Module, Any], tuple[Any, Any]]

    @property
    def user_roots(self) -> tuple[Path, ...]:
        """The folders of the user's code."""
        ...

    @property
    def task(self) -> str:
        """``classification``, ``regression`` or ``other`` (the spec's, else inferred from the loss)."""
        ...

    @property
    def watched(self) -> WatchedLoop | None:
        """In script mode, what watching the user's own loop recorded; None in spec mode
        (a check that reads it requires ``"script"``)."""
        ...

    @property
    def num_classes(self) -> int | None:
        """The number of classes of a classification task (the spec's, else inferred), or None."""
        ...

    def fresh_model(self) -> nn.Module:
        """A new copy of the model in its initial state, on the run's device, in train mode."""
        ...

    def template_model(self) -> nn.Module:
        """The model in its initial state, shared (read it, never train or change it)."""
        ...

    def forward_trace(self) -> Any:
        """The traced forward, loss and backward of the first training batch (memoised under
        ``keys.FORWARD_TRACE``; a :class:`dldoctor.api.measure.ForwardTrace`)."""
        ...

    def grad_flow(self, index: int) -> Any:
        """A watched forward and backward of training batch ``index`` on a fresh model
        (memoised under ``keys.GRAD_FLOW.at(index)``; a :class:`dldoctor.api.measure.GradFlow`)."""
        ...

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The spec's optimizer, built for ``model``'s parameters."""
        ...

    def batches(self, split: str = "train", n: int | None = None) -> list[Any]:
        """The first ``n`` batches of a split (default ``run.cached_batches``), on the device, cached."""
        ...

    def first_batch(self, split: str = "train") -> Any:
        """The first batch of a split, on the device."""
        ...

    def has_split(self, split: str) -> bool:
        """The spec gives ``split`` (``train``, ``val`` or ``test``) and it can be used."""
        ...

    def loader(self, split: str) -> Any:
        """The split's loader (a factory is called), or None when there is none or it cannot be used."""
        ...

    def set_unusable(self, split: str, reason: str) -> None:
        """Record that a held-out split cannot be used (checks requiring it are then skipped)."""
        ...

    def read(self, split: str = "train", loader: Any = None, *, source: Callable[[], Any] | None = None,
             what: str | None = None, unit: str = "batch") -> Iterator[Any]:
        """One guarded pass over a split (a deadline per batch; a hang raises ``CheckIncomplete``)."""
        ...

    def measure(self, key: Key[T], fn: Callable[[], T]) -> T:
        """The memoised measurement ``key``, computed with ``fn`` the first time any check asks.

        A measurement that failed (the user's code raised or hung) fails again at once
        for every later check that asks.
        """
        ...

    def time_left(self) -> float:
        """Seconds left of this check's wall-clock budget (``run.check_timeout_s``)."""
        ...

    def measured(self, name: str, value: float, *, unit: str = "", noise: float | None = None,
                 better: Better = None, title: str = "") -> Measurement:
        """Record a number this check measured, for the report's ``measurements`` (not a finding).

        ``name`` is dotted lower-case (``my_plugin.logit_scale``); ``noise`` is one standard
        error of ``value`` (or its resolution), None when unknown; ``better`` is ``"higher"``,
        ``"lower"`` or None. ``dldoctor diff`` compares measurements of the same name across
        two reports and calls a change worse only beyond the noise. A second record under
        the same name replaces the first.
        """
        ...

    def report_progress(self, label: str, step: int, loss: float) -> None:
        """Tell a live view how a training experiment is going (a no-op without one)."""
        ...

#: Requirements a check may declare; the context says whether each is met.
KNOWN_REQUIREMENTS = frozenset(
    {"forward_pass", "val_loader", "test_loader", "classification", "regression", "cuda", "reference", "script"}
)

#: A requirement ``"config:<section>.<key>"`` is met when that config value is true
#: (e.g. a costly check that only a profile switches on).
CONFIG_REQUIREMENT = "config:"


class Check:
    """Base class of a check. Subclass it, set the class attributes, write ``run``.

    Class attributes:
        name: kebab-case name, unique among checks (``--select``/``--ignore`` use it).
        stage: the stage it belongs to.
        emits: the diagnosis IDs it may report: built-in IDs and the check's own
            (those in ``catalogue`` are added to it).
        requires: context requirements (see ``KNOWN_REQUIREMENTS``, and
            ``"config:<key>"`` for a boolean setting); when one is not met the check
            is skipped with the reason.
        order: position within its stage (lower runs first), among checks that do not
            depend on each other.
        after: names of the checks whose results (``ctx.results``) this check reads,
            in its own stage or an earlier one: it runs after them when they run (it
            does not make them run). An unknown name or a cycle is a registration error.
        catalogue: the check's own diagnosis IDs, ``{"my-id": DiagnosisInfo(...)}``
            (third-party checks; built-in IDs are in :mod:`dldoctor.core.catalogue`).
        config: the check's own config section(s) with defaults and rules,
            ``{"my_check": {"threshold": (0.5, Range(0, 1))}}`` (see
            :func:`dldoctor.core.config_schema.parse_declaration`).

    The first line of the docstring is the user-facing summary (``dldoctor checks``).
    """

    name: ClassVar[str] = ""
    stage: ClassVar[Stage] = Stage.RUN
    emits: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[int] = 100
    after: ClassVar[tuple[str, ...]] = ()
    catalogue: ClassVar[Mapping[str, DiagnosisInfo]] = {}
    config: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls) or cls.__dict__.get("abstract", False):
            return
        if not cls.name:
            raise TypeError(f"{cls.__qualname__}: a check needs a 'name'")
        cls.stage = Stage(cls.stage)
        own = _own_catalogue(cls)
        unknown = [i for i in cls.emits if str(i) not in _catalogue.CATALOGUE and str(i) not in own]
        if unknown:
            raise TypeError(f"{cls.__qualname__}: emits unknown diagnosis IDs {unknown} (declare a "
                            "plugin's own IDs in its 'catalogue' class attribute)")
        cls.emits = tuple(dict.fromkeys([*(str(i) for i in cls.emits), *own]))
        try:
            from dldoctor.core.config_schema import parse_declaration

            parse_declaration(cls.config)
        except TypeError as exc:
            raise TypeError(f"{cls.__qualname__}: {exc}") from None
        bad = [r for r in cls.requires if r not in KNOWN_REQUIREMENTS and not r.startswith(CONFIG_REQUIREMENT)]
        if bad:
            raise TypeError(f"{cls.__qualname__}: unknown requirements {bad}")
        if isinstance(cls.after, str) or not all(isinstance(n, str) for n in cls.after) or cls.name in cls.after:
            raise TypeError(f"{cls.__qualname__}: 'after' must be a tuple of other checks' names, got {cls.after!r}")
        cls.after = tuple(cls.after)

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def run(self, ctx: CheckContext) -> list[Finding]:
        """Measure (through ``ctx``) and judge; return the findings (build them with :meth:`finding`)."""
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
        """Build a finding of this check; title and fixes default to the catalogue's
        (the check's own ``catalogue`` for its own IDs)."""
        diagnosis_id = str(diagnosis_id)
        if diagnosis_id not in self.emits:
            raise ValueError(f"check {self.name!r} does not declare {diagnosis_id!r} in 'emits'")
        own = type(self).catalogue
        entry = own[diagnosis_id] if diagnosis_id in own else _catalogue.get(diagnosis_id)
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

    def judged(self, judgement: Judgement, diagnosis_id: str | None = None) -> Finding:
        """The finding of a :class:`Judgement` (``diagnosis_id`` where the judgement names none)."""
        found = judgement.diagnosis_id or diagnosis_id
        if found is None:
            raise ValueError(f"check {self.name!r}: a judgement without a diagnosis ID needs one")
        return self.finding(found, judgement.severity, judgement.confidence, title=judgement.title or None,
                            evidence=judgement.evidence, fixes=judgement.fixes, metrics=judgement.metrics,
                            location=judgement.location)


def _own_catalogue(cls: type[Check]) -> Mapping[str, DiagnosisInfo]:
    """A check's ``catalogue``, validated: new kebab-case IDs, each with a ``DiagnosisInfo``
    whose ``explains`` names built-in IDs or the check's own.

    Raises:
        TypeError: naming the check and the ID.
    """
    own = cls.catalogue
    if not isinstance(own, Mapping):
        raise TypeError(f"{cls.__qualname__}: 'catalogue' must be a dict of ID -> DiagnosisInfo")
    for key, info in own.items():
        if not isinstance(key, str) or not _catalogue.ID_PATTERN.match(key):
            raise TypeError(f"{cls.__qualname__}: diagnosis ID {key!r} is not kebab-case (e.g. 'my-diagnosis')")
        if key in _catalogue.CATALOGUE:
            raise TypeError(f"{cls.__qualname__}: 'catalogue' declares {key!r}, which is a built-in diagnosis ID "
                            "(emit a built-in ID without declaring it, or choose a new ID)")
        if not isinstance(info, DiagnosisInfo):
            raise TypeError(f"{cls.__qualname__}: catalogue[{key!r}] must be a DiagnosisInfo, "
                            f"got {type(info).__name__}")
        bad = [t for t in info.explains if (t not in _catalogue.CATALOGUE and t not in own) or t == key]
        if bad:
            raise TypeError(f"{cls.__qualname__}: catalogue[{key!r}] explains {bad}: only built-in IDs and "
                            "the check's own other IDs can be explained")
    return own
