"""The terminal view: ranked diagnosis first, then the checks and their timings."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dldoctor.core.baseline import mark_text, summary_line
from dldoctor.core.diagnosis import CheckStatus, Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.core.measurement import rows as measurement_rows

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
STATUS_STYLE = {"passed": "green", "failed": "red", "skipped": "dim", "errored": "magenta"}
HEADLINE = {"healthy": ("healthy", "bold green"), "warning": ("warnings", "bold yellow"),
            "error": ("problems found", "bold red"), "incomplete": ("incomplete: not everything was checked",
                                                                     "bold magenta")}


def _finding_panel(f: Finding) -> Panel:
    body = Text()
    if f.location:
        body.append("where: ", style="dim").append(f.location + "\n")
    for e in f.evidence:
        if "\n" in e:
            body.append(e + "\n", style="dim")
        else:
            body.append("• ").append(e + "\n")
    if f.fixes:
        body.append("Try, in order:\n", style="bold")
        for i, fix in enumerate(f.fixes, start=1):
            body.append(f"  {i}. {fix}\n")
    if f.explained_by:
        body.append(f"Likely a consequence of {f.explained_by} (ranked above).\n", style="italic")
    if mark_text(f):
        body.append(f"{mark_text(f)}\n", style="bold")
    body.append(f"silence: --ignore {f.id}   details: dldoctor explain {f.id}", style="dim")
    title = Text.assemble((f"{f.rank}. ", "bold"), (f"{f.severity.value.upper()} ", SEVERITY_STYLE[f.severity.value]),
                          (f.id, "bold"), f"  {f.title}", (f"  ({f.confidence:.0%} sure)", "dim"))
    return Panel(body, title=title, title_align="left", border_style=SEVERITY_STYLE[f.severity.value])


def _bias_variance_table(report) -> Table:
    """The decomposition as a table with a horizontal bar per component."""
    table = Table(title=f"error decomposition ({report.get('unit', 'error')})", title_justify="left", box=None,
                  header_style="bold", pad_edge=False)
    for col in ("part", "value", ""):
        table.add_column(col)
    rows = [("irreducible", report.get("irreducible") or 0.0), *report.get("components", {}).items()]
    scale = max([abs(v) for _, v in rows] + [1e-12])
    for name, value in rows:
        bar = "█" * max(0, round(30 * value / scale)) if value > 0 else ""
        table.add_row(name, f"{value:+.3f}", Text(bar, "red" if name == "bias" else "yellow" if value > 0 else "dim"))
    observed = ", ".join(f"{k} {report[k]:.3f}" for k in ("train", "train_val", "val", "test")
                         if report.get(k) is not None)
    table.caption = observed
    return table


def render(diagnosis: Diagnosis, width: int | None = None) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 100, force_terminal=False, color_system=None,
                      highlight=False, soft_wrap=False)
    label, style = HEADLINE[diagnosis.status]
    console.print(Text.assemble(("dldoctor ", "bold"), (diagnosis.target, "bold"), ": ", (label, style)))
    if diagnosis.diagnoses:
        summary = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("#", "severity", "ID", "finding"):
            summary.add_column(col)
        for f in diagnosis.diagnoses:
            summary.add_row(str(f.rank), Text(f.severity.value, SEVERITY_STYLE[f.severity.value]), f.id,
                            f.title + (f"  [{mark_text(f)}]" if mark_text(f) else ""))
        console.print(summary)
        console.print()
        # Info findings stay in the summary table: panels are for what needs acting on.
        console.print(Group(*(_finding_panel(f) for f in diagnosis.diagnoses if f.severity.value != "info")))
    else:
        console.print("No problems found.")
    if diagnosis.reports.get("bias_variance"):
        console.print(_bias_variance_table(diagnosis.reports["bias_variance"]))
        console.print()
    if diagnosis.measurements:
        measured = Table(title="measurements", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("measurement", "value", "what"):
            measured.add_column(col, overflow="fold")
        for name, value, title in measurement_rows(diagnosis.measurements):
            measured.add_row(name, value, Text(title, "dim"))
        console.print(measured)
        console.print()
    if diagnosis.checks:
        table = Table(title="checks", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for col in ("check", "stage", "status", "time", "note"):
            table.add_column(col, overflow="fold")
        for c in diagnosis.checks:
            table.add_row(c.name, c.stage, Text(c.status.value, STATUS_STYLE[c.status.value]),
                          f"{c.duration_s:.2f}s", c.reason)
        console.print(table)
    errored = sum(c.status is CheckStatus.ERRORED for c in diagnosis.checks)
    if diagnosis.watched_text:
        console.print(diagnosis.watched_text, style="dim")
    if summary_line(diagnosis):
        console.print(summary_line(diagnosis), markup=False)
    console.print(f"seed {diagnosis.seed} · device {diagnosis.device} · {diagnosis.duration_s:.1f}s"
                  + (f" · {errored} check(s) could not finish" if errored else "")
                  + (" · interrupted: a partial report" if diagnosis.interrupted else ""), style="dim")
    return buffer.getvalue()
