"""Figures of a diagnosis's curves, drawn with matplotlib (optional extra: ``pip install 'dldoctor[plot]'``).

Every function here draws plain data (a diagnosis's ``series`` and ``reports``, see
:mod:`dldoctor.render.series`) on matplotlib objects, so the ``--plot`` files and the
HTML report draw the same pictures from a live run or from a saved JSON report.
Figures are built with :class:`matplotlib.figure.Figure`, not pyplot: nothing global
(the user's backend, pyplot's list of open figures) is touched.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dldoctor.render.series import BASELINE_LABEL, decomposition

PLOT_HINT = "pip install 'dldoctor[plot]'  (or: pip install matplotlib)"


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported, without importing it (half a second that the
    plot worker, not this process, should spend)."""
    import importlib.util
    import sys

    if "matplotlib" in sys.modules:
        return sys.modules["matplotlib"] is not None
    return importlib.util.find_spec("matplotlib") is not None


def prewarm() -> None:
    """Draw one small figure with text, so that matplotlib, its fonts and caches are loaded
    (the plot worker does so while the checks run). Never raises."""
    try:
        fig = new_figure(1.0, 1.0)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, 1], label="warm")
        ax.set_title("warm")
        ax.legend()
        svg_data_uri(fig)
    except Exception:
        return


def new_figure(width: float = 8.0, height: float = 4.2, left: float = 1.0) -> Any:
    """A matplotlib Figure that renders with Agg, whatever pyplot's backend is.

    Margins are fixed (``left`` inches for the y tick labels and label, room for a title
    above and an x label below), not fitted by ``tight_layout``: fitting draws every
    figure once more, which was 40% of the HTML report's rendering time.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=0.6 / height, top=1 - 0.4 / height,
                        wspace=0.9 / (width / 2))
    return fig


def _nan(values: Sequence[Any]) -> list[float]:
    return [float(v) if v is not None and math.isfinite(float(v)) else float("nan") for v in values]


def draw_overfit(ax: Any, curves: Sequence[Mapping[str, Any]], title: str = "") -> None:
    """Each single-batch run's training loss per step; the run as configured drawn thicker."""
    finite = [v for c in curves for v in c["loss"] if v is not None]
    for curve in curves:
        lr = curve.get("lr")
        label = f"{curve['label']} (lr={lr:.3g})" if lr is not None else str(curve["label"])
        ax.plot(curve["steps"], _nan(curve["loss"]), label=label,
                linewidth=2.4 if curve.get("baseline") or curve["label"] == BASELINE_LABEL else 1.2)
    if finite and all(v > 0 for v in finite):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title or "single batch: loss per step")
    if curves:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def draw_training(fig: Any, training: Mapping[str, Any]) -> None:
    """The short training run per epoch: loss (left) and error (right), per split."""
    loss_ax, error_ax = fig.subplots(1, 2)
    epochs = training.get("epoch", [])
    for ax, what, ylabel in ((loss_ax, "loss", "loss"), (error_ax, "error", training.get("error_name") or "error")):
        drawn = False
        for split, style in (("train", "-o"), ("val", "-s"), ("test", "--^")):
            values = training.get(f"{split}_{what}") or []
            if any(v is not None for v in values):
                ax.plot(epochs, _nan(values), style, label=split, markersize=4)
                drawn = True
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(ylabel)
        ax.set_title(f"short training run: {what}")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)


def draw_decomposition(ax: Any, report: Mapping[str, Any]) -> None:
    """The error decomposition as horizontal bars, the largest part in the warning colour."""
    parts = decomposition(report)
    names = [name for name, _ in parts]
    values = [value for _, value in parts]
    largest = max(range(len(values)), key=lambda i: values[i]) if values else -1
    colours = ["C3" if i == largest and values[i] > 0 else "C0" for i in range(len(values))]
    ax.barh(names, values, color=colours)
    ax.axvline(0, color="0.3", linewidth=0.8)
    if values:  # room for the labels beside the bars
        low, high = min(0.0, *values), max(0.0, *values)
        pad = 0.18 * ((high - low) or 1.0)
        ax.set_xlim(low - (pad if low < 0 else 0), high + pad)
    ax.invert_yaxis()
    for i, value in enumerate(values):
        ax.annotate(f"{value:+.3f}", (value, i), xytext=(4 if value >= 0 else -4, 0), textcoords="offset points",
                    va="center", ha="left" if value >= 0 else "right", fontsize=8)
    ax.set_xlabel(str(report.get("unit") or "error"))
    ax.set_title("error decomposition")
    ax.grid(alpha=0.3, axis="x")


def draw_resources(fig: Any, resources: Mapping[str, Any]) -> None:
    """Memory in use (left) and time per step (right) over the steps of one run."""
    memory_ax, time_ax = fig.subplots(1, 2)
    memory = resources.get("memory_bytes") or []
    if any(v is not None for v in memory):
        memory_ax.plot(resources.get("memory_steps", []), [v / 2**20 for v in _nan(memory)], color="C4")
    memory_ax.set_xlabel("step")
    memory_ax.set_ylabel("MiB in use")
    memory_ax.set_title("memory")
    memory_ax.grid(alpha=0.3)
    steps = resources.get("time_steps", [])
    for name, label, colour in (("compute_s", "step (forward, backward, update)", "C0"),
                                ("wait_s", "waiting for the batch", "C1")):
        values = resources.get(name) or []
        if any(v is not None for v in values):
            time_ax.plot(steps, [v * 1e3 for v in _nan(values)], label=label, color=colour, linewidth=1)
    time_ax.set_xlabel("step")
    time_ax.set_ylabel("ms")
    time_ax.set_title("time per step")
    time_ax.grid(alpha=0.3)
    if time_ax.get_legend_handles_labels()[0]:
        time_ax.legend(fontsize=8)


def draw_watched(ax: Any, watched: Mapping[str, Any]) -> None:
    ax.plot(watched["steps"], _nan(watched["loss"]), color="C0")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("the script's own loop: loss per step")
    ax.grid(alpha=0.3)


def draw_lr_range(ax: Any, report: Mapping[str, Any], smooth_width: int = 2) -> None:
    """The learning-rate range test (the same panel as ``dldoctor tune --plot``)."""
    from dldoctor.tuning.plot import lr_panel

    lr_panel(ax, report, smooth_width)


def svg_data_uri(fig: Any) -> str:
    """The figure as a ``data:image/svg+xml;base64,...`` URI (nothing to fetch at view time).

    SVG with its text left as text (the browser sets it): on the digits report's four
    figures 0.25-0.38 s against 0.47 s for PNG at 90 dpi, a third smaller, and sharp at any
    zoom. The element IDs are salted with a constant and the date left out, so the same
    data gives the same file.
    """
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dldoctor"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclasses.dataclass(frozen=True)
class Plot:
    """One figure of the HTML report."""

    id: str
    title: str
    caption: str
    uri: str
    error: str = ""
    """Why the figure could not be drawn (a report whose series were edited by hand); uri is then ""."""


def _plan(series: Mapping[str, Any], reports: Mapping[str, Any]) -> list[tuple[str, str, str, Callable[[], Any]]]:
    """``(id, title, caption, draw)`` for each figure the data allows, in report order."""
    plans: list[tuple[str, str, str, Callable[[], Any]]] = []
    overfit = series.get("overfit") or []
    if overfit:
        def overfit_fig() -> Any:
            fig = new_figure()
            draw_overfit(fig.subplots(), overfit)
            return fig
        experiments = len(overfit) - 1
        plans.append(("overfit", "Single-batch loss curves",
                      "The training loss on one batch, step by step: the run as configured"
                      + (f" and {experiments} experiment(s)" if experiments > 0 else "") + ".", overfit_fig))
    training = series.get("training")
    if training:
        def training_fig() -> Any:
            fig = new_figure(10, 4)
            draw_training(fig, training)
            return fig
        plans.append(("training", "Short training run", "Loss and error per epoch of the budgeted training run.",
                      training_fig))
    report = reports.get("bias_variance")
    if report and decomposition(report):
        def decomposition_fig() -> Any:
            fig = new_figure(7, 3.4)
            draw_decomposition(fig.subplots(), report)
            return fig
        plans.append(("decomposition", "Error decomposition",
                      "The error split into its parts (bias-variance); the largest part is the one to work on first.",
                      decomposition_fig))
    resources = series.get("resources")
    if resources:
        def resources_fig() -> Any:
            fig = new_figure(10, 4)
            draw_resources(fig, resources)
            return fig
        plans.append(("resources", "Memory and step time",
                      f"Memory in use and time per step over the {resources.get('run', 'run')}"
                      + (f" (memory: {resources['memory_source']})." if resources.get("memory_source") else "."),
                      resources_fig))
    watched = series.get("watched_loss")
    if watched:
        def watched_fig() -> Any:
            fig = new_figure()
            draw_watched(fig.subplots(), watched)
            return fig
        plans.append(("watched-loop", "The script's own loop", "The loss of each optimizer step dldoctor watched.",
                      watched_fig))
    lr_report = reports.get("lr_range")
    if lr_report and lr_report.get("sweep") and lr_report.get("reading") is not None:
        def lr_fig() -> Any:
            fig = new_figure()
            draw_lr_range(fig.subplots(), lr_report)
            return fig
        plans.append(("lr-range", "Learning-rate range test",
                      str(lr_report.get("summary") or "The loss as the learning rate grows step by step."), lr_fig))
    return plans


def plot_ids(series: Mapping[str, Any], reports: Mapping[str, Any]) -> list[str]:
    """The ids of the figures :func:`draw_all` would draw for this data (no matplotlib needed)."""
    return [plan[0] for plan in _plan(series, reports)]


def draw_all(series: Mapping[str, Any], reports: Mapping[str, Any], here: bool = False) -> list[Plot]:
    """Every figure the data allows, as SVG data URIs. Needs matplotlib. Drawn by the plot
    worker when one was started (:mod:`dldoctor.render.plot_worker`), unless ``here``."""
    if not here:
        from dldoctor.render import plot_worker

        drawn = plot_worker.draw(series, reports)
        if drawn is not None:
            return drawn
    plots = []
    for plot_id, title, caption, draw in _plan(series, reports):
        try:
            uri = svg_data_uri(draw())
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            plots.append(Plot(plot_id, title, caption, "", f"could not be drawn from this report's data ({exc})"))
            continue
        plots.append(Plot(plot_id, title, caption, uri))
    return plots
