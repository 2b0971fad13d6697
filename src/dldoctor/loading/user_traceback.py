"""Show the user their own traceback, trimmed to their frames."""

from __future__ import annotations

import os
import sysconfig
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
)


def _is_library(filename: str) -> bool:
    resolved = os.path.realpath(filename)
    if resolved.startswith(_PACKAGE_DIR) or filename.startswith("<"):
        return True
    return resolved.startswith(_LIBRARY_DIRS) or "site-packages" in resolved or "dist-packages" in resolved


def user_frames(tb: TracebackType | None, roots: Iterable[Path] = ()) -> list[traceback.FrameSummary]:
    """The frames of ``tb`` that are the user's code.

    A frame is the user's when its file lies under one of ``roots`` (the target's
    folder), or, when no roots are given, when it is not in dldoctor, the standard
    library or an installed package.
    """
    frames = traceback.extract_tb(tb)
    root_strs = [str(Path(r).resolve()) for r in roots]
    if root_strs:
        mine = [f for f in frames if os.path.realpath(f.filename).startswith(tuple(root_strs))
                and not _is_library(f.filename)]
        if mine:
            return mine
    return [f for f in frames if not _is_library(f.filename)]


def format_user_traceback(exc: BaseException, roots: Iterable[Path] = (), limit: int = 8) -> str:
    """The user's part of ``exc``'s traceback, then the exception line.

    Library frames (torch, dldoctor, the standard library) are dropped: they say
    nothing the user can change. At most ``limit`` frames, the innermost kept.
    """
    frames = user_frames(exc.__traceback__, roots)[-limit:]
    lines = ["Traceback (your code, most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def exception_line(exc: BaseException) -> str:
    """``Type: first line of message``, for one-line evidence."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def innermost_user_frame(exc: BaseException, roots: Iterable[Path] = (), strict: bool = False) -> str:
    """``file:line in function`` of the innermost user frame, or "" when none.

    ``strict``: only frames under ``roots`` count (not any frame outside the libraries).
    """
    frames = user_frames(exc.__traceback__, roots)
    if strict:
        root_strs = tuple(str(Path(r).resolve()) for r in roots)
        frames = [f for f in frames if root_strs and os.path.realpath(f.filename).startswith(root_strs)]
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"

