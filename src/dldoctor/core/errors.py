"""Exit codes and the errors a user can act on."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The documented exit codes of every ``dldoctor`` command."""

    OK = 0
    """Nothing at or above ``--fail-on`` was found."""
    FINDINGS = 1
    """Something at or above ``--fail-on`` was found."""
    USAGE = 2
    """dldoctor could not run: a usage error, a broken entrypoint or config."""


class DldoctorError(Exception):
    """An error the user can act on: printed as a short message, never a traceback.

    Attributes:
        message: one line naming the problem.
        hint: what to do about it (may span lines, e.g. the code to add).
        user_traceback: the user's own traceback, already trimmed to their frames.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "", user_traceback: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.user_traceback = user_traceback


class EntrypointError(DldoctorError):
    """The user's file, spec function or spec is missing or broken."""


class ConfigError(DldoctorError):
    """A configuration file or option is invalid."""


class UsageError(DldoctorError):
    """A command-line usage problem (bad option value, unknown ID)."""


class CheckIncomplete(Exception):
    """A check (or the measurement it reads) could not finish.

    Raised from inside a check or a probe when the data it reads hangs, or a safety
    limit (wall clock) stops a measurement before its fixed step budget: the check's
    verdict would then rest on less than it was designed to read. The pipeline turns
    it into a ``check-incomplete`` finding, never into a verdict about the model.

    Attributes:
        reason: one line: what could not be finished and why.
        location: the user's line that caused it (``file:line``), or "".
        user_traceback: the user's frames where the cause lies (a stack sample), or "".
        user_code: True when the user's own code (a loader, a factory) is the cause;
            the run then exits 2, like any broken entrypoint.
    """

    def __init__(self, reason: str, location: str = "", user_traceback: str = "", user_code: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.location = location
        self.user_traceback = user_traceback
        self.user_code = user_code


def user_line(reason: str) -> str:
    """The ``file.py:N in function`` a crash reason ends with, in parentheses (else "")."""
    import re

    found = re.search(r"\(([\w.-]+\.py:\d+ in [\w<>.]+)\)$", reason)
    return found.group(1) if found else ""
