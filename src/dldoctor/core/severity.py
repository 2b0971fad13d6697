"""Severity of a finding, and the ``--fail-on`` threshold that reads it."""

from __future__ import annotations

import enum


class Severity(str, enum.Enum):
    """How bad a finding is. ``error`` fails CI by default."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class FailOn(str, enum.Enum):
    """The ``--fail-on`` choice: which severity makes the run exit 1."""

    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"

    def trips(self, severity: Severity) -> bool:
        if self is FailOn.NEVER:
            return False
        return severity.at_least(Severity(self.value))
