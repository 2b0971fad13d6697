"""Figures of the curves dldoctor measured (optional extra: ``pip install dldoctor[plot]``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dldoctor.core.errors import UsageError


def plot_curves(measurements: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Draw every overfit run's loss curve, labelled by its experiment, to PNG or SVG."""
    from dldoctor.probes.overfit.one_batch import Curve

    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: use a .png, .svg or .pdf file name")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib", hint="pip install 'dldoctor[plot]'  (or: pip install matplotlib)") \
            from None
    curves = [c for c in measurements.values() if isinstance(c, Curve)]
    if not curves:
        raise UsageError("--plot: this run recorded no training curve (did the training step crash?)")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    baseline = "as configured"
    for curve in sorted(curves, key=lambda c: (c.label != baseline, c.label)):
        losses = [x if math.isfinite(x) else float("nan") for x in curve.losses]
        label = f"{curve.label} (lr={curve.lr:.3g})"
        ax.plot(range(len(losses)), losses, label=label, linewidth=2.4 if curve.label == baseline else 1.2)
    positive = all(x > 0 for c in curves for x in c.losses if math.isfinite(x))
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"dldoctor overfit-batch: {title}" if title else "dldoctor overfit-batch")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
