"""The public, typed surface for check authors: third-party checks and the built-in ones.

Built-in checks import from here and from the submodules below only (a test holds
them to it), so a plugin can do whatever a built-in check does. This module does not
import torch::

    from dldoctor.api import Check, CheckContext, DiagnosisInfo, Finding, Key, Range, Severity, Stage

    class MyCheck(Check):
        # (a docstring: its first line is what ``dldoctor checks`` shows)

        name = "my-check"
        stage = Stage.RUN
        requires = ("forward_pass",)
        catalogue = {"my-diagnosis": DiagnosisInfo(title=..., explanation=..., evidence=(...,), fixes=(...,))}
        config = {"my_check": {"threshold": (0.5, Range(0, 1, note="a fraction"))}}

        def run(self, ctx: CheckContext) -> list[Finding]:
            threshold = ctx.config.get("my_check.threshold")
            ...
            return [self.finding("my-diagnosis", Severity.WARNING, 0.8, evidence=[...])]

Names here:
    Check          the base class: ``name``, ``stage``, ``emits``, ``requires``, ``order``,
                   ``after`` (checks whose results it reads), ``catalogue`` (own IDs),
                   ``config`` (own section), ``run``, ``finding``, ``judged``.
    CheckContext   what ``run(ctx)`` may use (a Protocol: config, spec, device, seed, task,
                   num_classes, batches, first_batch, loader, has_split, read, fresh_model,
                   make_optimizer, forward_fn, forward_trace, measure, reports, results,
                   findings, time_left, measured).
    Measurement    a number a check recorded with ``ctx.measured(name, value, unit=, noise=,
                   better=, title=)``: the report's ``measurements``, which ``dldoctor diff``
                   compares between two runs (not a finding).
    Key, Store     a typed key (``Key[T]``) of a measurement, report or result, and the
                   store they index (``ctx.reports``, ``ctx.results``).
    Judgement      a finding to be, as judging functions return it (``Check.judged``).
    DiagnosisInfo  a catalogue entry for one of the check's own diagnosis IDs.
    Entry          a catalogue entry as ``lookup`` returns it (built-in or a plugin's).
    CATALOGUE      the built-in entries, by ID.
    Finding, Severity, Stage
    Range, Choice, Flag, Size   the rules a config key's value must meet.
    CheckIncomplete  raise it when a measurement could not finish (the run reports
                   ``check-incomplete`` instead of a verdict).
    ConfigError    raise it for a config value that cannot be used.
    lookup         the catalogue entry of a diagnosis ID (built-in or a loaded plugin's).
    user_line      the innermost line of the user's code in a traceback.
    LOSSES, ELEMENTWISE, CLASS_SCORES   the loss-kind table (torch losses by name and kind).
    format_bytes, parse_budget          byte sizes for people and from config.
    canonical      a metrics log's split name, canonicalised.
    WatchedLoop, StepRecord, NoGradPass, OptimizerInfo   what script mode recorded of the
                   user's own loop (``ctx.watched``; checks that read it require ``"script"``).

Submodules (they import torch):
    dldoctor.api.keys     every built-in key: measurements, reports, results.
    dldoctor.api.measure  the probes: measurements and experiments on copies of the model.
    dldoctor.api.read     the readings: pure interpretation of measurements, and wording.
"""

from __future__ import annotations

from dldoctor.core.catalogue import CATALOGUE, DiagnosisInfo
from dldoctor.core.catalogue import get as lookup
from dldoctor.core.check import Check, CheckContext
from dldoctor.core.config_schema import Choice, Flag, Range, Size
from dldoctor.core.entry import Entry
from dldoctor.core.errors import CheckIncomplete, ConfigError, user_line
from dldoctor.core.finding import Finding
from dldoctor.core.judgement import Judgement
from dldoctor.core.keys import Key, Store
from dldoctor.core.loss_kinds import CLASS_SCORES, ELEMENTWISE, LOSSES
from dldoctor.core.measurement import Measurement
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage
from dldoctor.loading.metrics_log import canonical
from dldoctor.loading.script.record import NoGradPass, OptimizerInfo, StepRecord, WatchedLoop
from dldoctor.runtime.units import format_bytes, parse_budget

__all__ = [
    "CATALOGUE",
    "CLASS_SCORES",
    "ELEMENTWISE",
    "LOSSES",
    "Check",
    "CheckContext",
    "CheckIncomplete",
    "Choice",
    "ConfigError",
    "DiagnosisInfo",
    "Entry",
    "Finding",
    "Flag",
    "Judgement",
    "Key",
    "Measurement",
    "NoGradPass",
    "OptimizerInfo",
    "Range",
    "Severity",
    "Size",
    "Stage",
    "StepRecord",
    "Store",
    "WatchedLoop",
    "canonical",
    "format_bytes",
    "lookup",
    "parse_budget",
    "user_line",
]
