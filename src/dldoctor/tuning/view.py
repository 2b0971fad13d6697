"""The tuning report for people: the range test, the trials table, the best configuration
with its gain and uncertainty, importances. Rich text and Markdown read the same
plain report (``Diagnosis.reports["lr_range"]`` and ``["tuning"]``); JSON needs
nothing here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

MAX_ROWS = 30


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4) else f"{value:.4g}"
    return str(value)


def _score(report: Mapping[str, Any], error: Any) -> str:
    if not isinstance(error, (int, float)) or not math.isfinite(error):
        return "-" if error is None else str(error)
    return f"{1 - error:.4f}" if report.get("unit") == "1 - accuracy" else f"{error:.4g}"


def lr_lines(lr_report: Mapping[str, Any] | None) -> list[str]:
    """The range test in a few sentences."""
    if not lr_report:
        return []
    sweep, reading = lr_report["sweep"], lr_report["reading"]
    lines = [f"learning-rate range test: {lr_report['summary']}",
             f"  {len(sweep['losses'])} steps from lr {sweep['low']:.3g} towards {sweep['high']:.3g}, "
             f"stopped by {sweep['stopped_by']}; the spec's learning rate is {sweep['base_lr']:.3g}"]
    for reason in reading.get("reasons", [])[1:] if reading["status"] == "none" else []:
        lines.append(f"  {reason}")
    return lines


def gain_line(report: Mapping[str, Any]) -> str:
    gain = report.get("gain")
    metric = report.get("metric", "score")
    if gain is None:
        return next((n for n in report.get("notes", ()) if n.startswith("the defaults")), "no gain measured")
    unit = "points" if report.get("unit") == "1 - accuracy" else ""
    value = gain["gain"] * (100 if unit else 1)
    se = gain["se"] * (100 if unit else 1)
    seeds = f" over {len(gain['seeds'])} fresh seeds" if gain.get("seeds") else ""
    verdict = "significant" if gain["significant"] else f"not significant (below {gain['z']:g} standard errors)"
    return f"gain over the defaults{seeds}: {value:+.1f} ± {se:.1f} {unit} of {metric} -- {verdict}".replace("  ", " ")


def spread_line(report: Mapping[str, Any]) -> str:
    top = report.get("top")
    if not top:
        return ""
    text = (f"the top {top['count']} trials lie within {top['spread'] * 100:.1f} points of each other"
            if report.get("unit") == "1 - accuracy" else
            f"the top {top['count']} trials lie within {top['spread']:.3g} of each other")
    if top.get("noise_se") is not None:
        text += (f"; the validation set's sampling error is ±{top['noise_se'] * 100:.1f} points, so "
                 + ("they are equally good within noise" if top["within_noise"] else "the best stands out"))
    return text


def _rows(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    trials = list(report.get("trials", ()))
    if len(trials) <= MAX_ROWS:
        return trials
    ranked = sorted(trials, key=lambda t: (t["state"] != "complete", t["error"] if isinstance(t["error"], float)
                                           else math.inf, t["number"]))
    return sorted(ranked[:MAX_ROWS], key=lambda t: t["number"])


def render_rich(report: Mapping[str, Any] | None, lr_report: Mapping[str, Any] | None, width: int = 100) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, highlight=False)
    for line in lr_lines(lr_report):
        console.print(line, markup=False)
    if report:
        names = [p["name"] for p in report["params"]]
        console.print(f"search: {report['method']}, study {report['study']} ({report['storage']})", markup=False)
        workers = len({t.get("worker") for t in report["trials"]}) > 1
        table = Table(title="trials", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("#", "round", "state", *names, report.get("metric", "score"), "epochs",
                    *(["worker"] if workers else [])):
            table.add_column(col)
        best = (report.get("best") or {}).get("number")
        for t in _rows(report):
            style = "bold" if t["number"] == best else ("dim" if t["state"] != "complete" else "")
            table.add_row(str(t["number"]), str(t["round"]), t["state"], *(_num(t["params"].get(n, "")) for n in names),
                          _score(report, t["error"]), str(t["epochs"] or ""),
                          *([t.get("worker", "")] if workers else []), style=style)
        if len(report["trials"]) > MAX_ROWS:
            table.caption = f"the best {MAX_ROWS} of {len(report['trials'])} trials"
        console.print(table)
        console.print()
        for line in summary_lines(report):
            console.print(line, markup=False)
        if report.get("importances"):
            console.print(Text("parameter importances (Optuna)", style="bold"))
            for name, value in report["importances"].items():
                console.print(f"  {name:<24} {value:5.2f} {'█' * round(30 * value)}", markup=False)
    return buffer.getvalue()


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The best configuration, the defaults, the gain and the spread, as sentences."""
    best, base = report.get("best"), report.get("baseline")
    lines = []
    if best:
        params = ", ".join(f"{k}={_num(v)}" for k, v in best["params"].items())
        lines.append(f"best configuration (trial {best['number']}): {params}; "
                     f"{report['metric']} {_score(report, best['error'])}")
    if base:
        params = ", ".join(f"{k}={_num(v)}" for k, v in base["params"].items())
        lines.append(f"defaults: {params}; {report['metric']} {_score(report, base['error'])}")
    if best:
        lines.append(gain_line(report))
    spread = spread_line(report)
    if spread:
        lines.append(spread)
    lines += [n for n in report.get("notes", ()) if not n.startswith("the defaults")]
    return lines


def render_markdown(report: Mapping[str, Any] | None, lr_report: Mapping[str, Any] | None) -> str:
    lines = ["", "## Tuning", ""]
    lines += [f"- {line.strip()}" for line in lr_lines(lr_report)]
    if report:
        names = [p["name"] for p in report["params"]]
        lines += ["", "| # | round | state | " + " | ".join(names) + f" | {report.get('metric')} |",
                  "|---|---|---|" + "---|" * len(names) + "---|"]
        for t in _rows(report):
            cells = [str(t["number"]), str(t["round"]), t["state"], *(_num(t["params"].get(n, "")) for n in names),
                     _score(report, t["error"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""] + [f"- {line}" for line in summary_lines(report)]
        if report.get("importances"):
            lines.append("- importances: " + ", ".join(f"{k} {v:.2f}" for k, v in report["importances"].items()))
    return "\n".join(lines) + "\n"
