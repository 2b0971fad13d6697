"""``dldoctor diff`` output: the terminal view, Markdown (a pull-request comment) and JSON."""

from __future__ import annotations

import io
import json

from dldoctor.core.measurement import format_value
from dldoctor.core.report_diff import MeasurementChange, ReportDiff

_KIND = {"new": "new", "changed": "severity changed", "fixed": "fixed"}


def _side(m: MeasurementChange, which: str) -> str:
    side = m.old if which == "old" else m.new
    if side is None:
        return "—"
    try:
        return format_value(float(side["value"]), str(side.get("unit") or ""), side.get("noise"))
    except (KeyError, TypeError, ValueError):
        return str(side.get("value"))


def _headline(diff: ReportDiff) -> str:
    if diff.worse:
        return f"worse: {len(diff.regressions)} regression(s)"
    return "nothing got worse"


def _severities(old: str, new: str) -> str:
    return f"{old or '—'} -> {new or '—'}"


def render_json(diff: ReportDiff) -> str:
    return json.dumps(diff.to_dict(), indent=2) + "\n"


def render_markdown(diff: ReportDiff) -> str:
    icon = "❌" if diff.worse else "✅"
    lines = [f"## dldoctor diff: {icon} {_headline(diff)}", "",
             f"`{diff.old_target}` ({diff.old_status}) → `{diff.new_target}` ({diff.new_status})", ""]
    if diff.regressions:
        lines += ["**Worse:**", ""] + [f"- {line}" for line in diff.regressions] + [""]
    if diff.findings:
        lines += ["| change | severity | ID | check | where | finding |", "|---|---|---|---|---|---|"]
        for f in diff.findings:
            mark = "❌ " if f.worse else ""
            lines.append(f"| {mark}{_KIND[f.kind]} | {_severities(f.old_severity, f.new_severity)} | `{f.id}` | "
                         f"{f.check} | {f.location and '`' + f.location + '`'} | {f.title.replace('|', '/')} |")
        lines.append("")
    else:
        lines += ["No finding is new, fixed or changed.", ""]
    if diff.measurements:
        lines += ["| measurement | old | new | verdict | rule |", "|---|---|---|---|---|"]
        for m in diff.measurements:
            mark = "❌ " if m.worse else ""
            lines.append(f"| `{m.name}` | {_side(m, 'old')} | {_side(m, 'new')} | {mark}{m.verdict} | "
                         f"{m.rule.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def render_rich(diff: ReportDiff, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 110, force_terminal=False, color_system=None, highlight=False,
                      soft_wrap=False)
    console.print(Text.assemble(("dldoctor diff: ", "bold"),
                                (_headline(diff), "bold red" if diff.worse else "bold green")))
    console.print(f"old: {diff.old_target} ({diff.old_status})   new: {diff.new_target} ({diff.new_status})",
                  markup=False)
    for line in diff.regressions:
        console.print(f"  worse: {line}", markup=False, style="red")
    console.print()
    if diff.findings:
        table = Table(title="findings", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("change", "severity", "ID", "check", "where", "finding"):
            table.add_column(col, overflow="fold")
        for f in diff.findings:
            table.add_row(Text(_KIND[f.kind], "red" if f.worse else "green" if f.kind == "fixed" else ""),
                          _severities(f.old_severity, f.new_severity), f.id, f.check, f.location, f.title)
        console.print(table)
        console.print()
    else:
        console.print("No finding is new, fixed or changed.")
    if diff.measurements:
        table = Table(title="measurements", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("measurement", "old", "new", "verdict", "rule"):
            table.add_column(col, overflow="fold")
        for m in diff.measurements:
            style = {"worse": "red", "better": "green"}.get(m.verdict, "dim" if m.verdict.startswith("only") else "")
            table.add_row(m.name, _side(m, "old"), _side(m, "new"), Text(m.verdict, style), Text(m.rule, "dim"))
        console.print(table)
    return buffer.getvalue()
