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
