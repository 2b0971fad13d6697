"""The public, typed surface for check authors (third-party checks, a.k.a. plugins).

Everything a check needs, from one module that does not import torch::

    from dldoctor.api import Check, CheckContext, DiagnosisInfo, Finding, Range, Severity, Stage

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

Names:
    Check          the base class: ``name``, ``stage``, ``emits``, ``requires``, ``order``,
                   ``catalogue`` (own IDs), ``config`` (own section), ``run``, ``finding``.
    CheckContext   what ``run(ctx)`` may use (a Protocol: config, spec, device, seed, task,
                   num_classes, batches, first_batch, loader, has_split, read,
                   fresh_model, make_optimizer, forward_fn, measure, findings, time_left).
    DiagnosisInfo  a catalogue entry for one of the check's own diagnosis IDs.
    Entry          a catalogue entry as ``lookup`` returns it (built-in or a plugin's).
    Finding, Severity, Stage
    Range, Choice, Flag, Size   the rules a config key's value must meet.
    CheckIncomplete  raise it when a measurement could not finish (the run reports
                   ``check-incomplete`` instead of a verdict).
    lookup         the catalogue entry of a diagnosis ID (built-in or a loaded plugin's).
"""

from __future__ import annotations

from dldoctor.core.catalogue import DiagnosisInfo
from dldoctor.core.catalogue import get as lookup
from dldoctor.core.check import Check, CheckContext
from dldoctor.core.config_schema import Choice, Flag, Range, Size
from dldoctor.core.entry import Entry
from dldoctor.core.errors import CheckIncomplete
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage

__all__ = [
    "Check", "CheckContext", "CheckIncomplete", "Choice", "DiagnosisInfo", "Entry", "Finding", "Flag", "Range",
    "Severity", "Size", "Stage", "lookup",
]
