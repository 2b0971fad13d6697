"""Draw the HTML report's figures in a helper process started before the checks run.

Importing matplotlib and loading its fonts takes about half a second, as long as drawing
the digits report's four figures: on the digits example the HTML report then added 11-15%
to a run. A thread could load matplotlib beside the checks, but both hold the GIL for most
of that time. A process does not: :func:`start` launches ``python -m
dldoctor.render.plot_worker``, which imports matplotlib and draws one small figure at once,
then waits for one line of JSON on stdin (``{"series": ..., "reports": ...}``) and answers
with the figures on stdout. :func:`submit` hands the work over as soon as the caller has
it, :func:`draw` collects the figures; when there is no worker, or it failed, the caller
draws in its own process. A fresh interpreter, not ``multiprocessing``: its spawn start
method would re-import the ``__main__`` module, which in script mode is the user's
training script.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any


class _Worker:
    """The one worker of this process, for the one HTML report it writes."""

    process: subprocess.Popen | None = None
    sent: str | None = None


def start() -> None:
    """Start the worker (once per process); it warms matplotlib up while the caller goes on."""
    if _Worker.process is not None:
        return
    try:
        _Worker.process = subprocess.Popen([sys.executable, "-m", "dldoctor.render.plot_worker"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                           text=True)
    except OSError:
        _Worker.process = None


def _message(series: Mapping[str, Any], reports: Mapping[str, Any]) -> str:
    return json.dumps({"series": series, "reports": reports}, sort_keys=True)


def submit(series: Mapping[str, Any], reports: Mapping[str, Any]) -> None:
    """Hand the worker its data now, so that it draws while the caller does other work."""
    process = _Worker.process
    if process is None or _Worker.sent is not None or process.stdin is None:
        return
    try:
        _Worker.sent = _message(series, reports)
        process.stdin.write(_Worker.sent + "\n")  # one line: JSON without indent has no newline
        process.stdin.flush()
    except (OSError, TypeError, ValueError):
        _Worker.sent = ""  # it could not take the data: draw() gives up on it


def draw(series: Mapping[str, Any], reports: Mapping[str, Any]) -> list[Any] | None:
    """The figures drawn by the worker, or None when there is none, it failed, or it was
    given other data than this."""
    submit(series, reports)
    process, sent = _Worker.process, _Worker.sent
    _Worker.process, _Worker.sent = None, None  # one message per worker
    if process is None:
        return None
    from dldoctor.render.figures import Plot

    try:
        if sent != _message(series, reports):
            raise ValueError("the worker was given other data")
        out, _ = process.communicate(timeout=120)
        return [Plot(**p) for p in json.loads(out)]
    except (OSError, ValueError, TypeError, subprocess.TimeoutExpired):
        process.kill()
        return None


def main() -> None:
    from dldoctor.render.figures import draw_all, prewarm

    prewarm()
    message = json.loads(sys.stdin.readline())
    plots = draw_all(message["series"], message["reports"], here=True)
    sys.stdout.write(json.dumps([dataclasses.asdict(p) for p in plots]))


if __name__ == "__main__":
    main()
