"""Judgements: what a judging function concluded, before a check turns it into a finding.

Checks keep their judging in pure functions (numbers in, a judgement out) so that the
thresholds can be tested without a model, a context or a check. Those functions used
to return a ``Verdict`` class of their own each; they meant the same thing (a finding
to be), so they share this one type, and :meth:`dldoctor.core.check.Check.judged`
turns any of them into a :class:`~dldoctor.core.finding.Finding`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dldoctor.core.severity import Severity


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A finding to be.

    Attributes:
        diagnosis_id: the diagnosis ID, or None where the check that asked knows it
            (a judge for a single ID).
        severity: info, warning or error.
        confidence: 0..1.
        title: one line; "" for the catalogue's title.
        evidence: the observed numbers, in words, most telling first.
        fixes: what to try, in order; None for the catalogue's fixes.
        metrics: the evidence as plain numbers.
        location: where (a module path, ``loss``, ``data``, ``head``), or "".
        case: which of the situations a judge tells apart under one ID (e.g.
            ``probs-into-logits`` under ``loss-input-probabilities``), or "".
    """

    diagnosis_id: str | None
    severity: Severity
    confidence: float
    title: str = ""
    evidence: tuple[str, ...] = ()
    fixes: tuple[str, ...] | None = None
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    location: str = ""
    case: str = ""
