"""Figures of the curves dldoctor measured (optional extra: ``pip install dldoctor[plot]``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dldoctor.core.errors import UsageError
from dldoctor.render.figures import PLOT_HINT, draw_overfit
from dldoctor.render.series import overfit_series


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
        raise UsageError("--plot needs matplotlib", hint=PLOT_HINT) from None
    curves = [c for c in measurements.values() if isinstance(c, Curve)]
    if not curves:
        raise UsageError("--plot: this run recorded no training curve (did the training step crash?)")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    draw_overfit(ax, overfit_series(curves),
                 title=f"dldoctor overfit-batch: {title}" if title else "dldoctor overfit-batch")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
