"""``--plot FILE``: the range test and the search in one figure (needs matplotlib)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dldoctor.core.errors import UsageError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib", hint="pip install matplotlib") from None
    return plt


def lr_panel(ax, lr_report: Mapping[str, Any], smooth_width: int) -> None:
    from dldoctor.readings.lr import moving_median

    sweep, reading = lr_report["sweep"], lr_report["reading"]
    pairs = [(lr, loss) for lr, loss in zip(sweep["lrs"], sweep["losses"]) if math.isfinite(loss)]
    if not pairs:
        ax.set_title("learning-rate range test: no finite loss")
        return
    lrs, losses = map(np.array, zip(*pairs))
    ax.plot(lrs, losses, color="0.75", linewidth=1, label="loss per step")
    ax.plot(lrs, moving_median(losses, smooth_width), color="C0", linewidth=2, label="smoothed")
    if reading.get("descent_low") and reading.get("descent_high"):
        ax.axvspan(reading["descent_low"], reading["descent_high"], color="C2", alpha=0.12, label="descent")
    if reading.get("suggestion"):
        ax.axvline(reading["suggestion"], color="C2", linestyle="--",
                   label=f"suggested {reading['suggestion']:.3g} ({reading['confidence']:.0%})")
    ax.axvline(sweep["base_lr"], color="C3", linestyle=":", label=f"spec {sweep['base_lr']:.3g}")
    ax.set_xscale("log")
    top = np.percentile(losses, 95) if len(losses) > 3 else max(losses)
    ax.set_ylim(min(losses) - 0.05 * abs(top), top * 1.1 if top > 0 else None)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test" + ("" if reading.get("suggestion") else ": no clear minimum"))
    ax.legend(fontsize=7)


def _search_panel(ax, report: Mapping[str, Any]) -> None:
    shown = (lambda e: 1 - e) if report.get("unit") == "1 - accuracy" else (lambda e: e)
    done = [t for t in report["trials"] if isinstance(t.get("error"), float) and math.isfinite(t["error"])]
    for state, marker in (("complete", "o"), ("pruned", "x")):
        pts = [t for t in done if t["state"] == state]
        if pts:
            ax.scatter([t["number"] for t in pts], [shown(t["error"]) for t in pts], c=[t["round"] for t in pts],
                       cmap="viridis", marker=marker, label=state)
    complete = sorted((t for t in done if t["state"] == "complete"), key=lambda t: t["number"])
    if complete:
        best, line = None, []
        for t in complete:
            value = shown(t["error"])
            better = best is None or (value > best if report.get("unit") == "1 - accuracy" else value < best)
            best = value if better else best
            line.append((t["number"], best))
        ax.step(*zip(*line), where="post", color="C3", label="best so far")
    ax.set_xlabel("trial (colour: round)")
    ax.set_ylabel(report.get("metric", "score"))
    ax.set_title(f"search: {report['method']}")
    ax.legend(fontsize=7)


def plot_tuning(lr_report: Mapping[str, Any] | None, report: Mapping[str, Any] | None, path: Path,
                smooth_width: int = 2) -> Path:
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: use a .png, .svg or .pdf file name")
    plt = _pyplot()
    panels = [p for p in (lr_report, report) if p]
    if not panels:
        raise UsageError("--plot: nothing was measured to draw")
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    i = 0
    if lr_report:
        lr_panel(axes[0][i], lr_report, smooth_width)
        i += 1
    if report:
        _search_panel(axes[0][i], report)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
