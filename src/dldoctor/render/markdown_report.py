"""Markdown output, for a CI job summary (e.g. ``>> $GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from dldoctor.core.baseline import mark_text, summary_line
from dldoctor.core.diagnosis import CheckStatus, Diagnosis
from dldoctor.core.measurement import rows as measurement_rows

_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
_STATUS = {"healthy": "✅ healthy", "warning": "⚠️ warning", "error": "❌ error",
           "incomplete": "⏸️ incomplete (not everything was checked)"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(diagnosis: Diagnosis) -> str:
    lines = [f"## dldoctor: `{diagnosis.target}` — {_STATUS[diagnosis.status]}", ""]
    shown = list(diagnosis.diagnoses)
    if shown:
        lines += ["| # | severity | ID | finding | confidence |", "|---|---|---|---|---|"]
        for f in shown:
            note = f" (explained by `{f.explained_by}`)" if f.explained_by else ""
            note += f" *{_cell(mark_text(f))}*" if mark_text(f) else ""
            lines.append(f"| {f.rank} | {_ICON[f.severity.value]} {f.severity.value} | `{f.id}` | "
                         f"{_cell(f.title)}{note} | {f.confidence:.0%} |")
        lines.append("")
        for f in shown:
            if f.severity.value == "info" and not f.evidence:
                continue
            lines.append(f"### {f.rank}. `{f.id}`: {f.title}")
            if f.location:
                lines.append(f"*where:* `{f.location}`")
            if mark_text(f):
                lines.append(f"**{mark_text(f)}**")
            lines.append("")
            for e in f.evidence:
                if "\n" in e:
                    lines += ["```", e, "```"]
                else:
                    lines.append(f"- {e}")
            if f.fixes:
                lines += ["", "**Try, in order:**", ""]
                lines += [f"{i}. {fix}" for i, fix in enumerate(f.fixes, start=1)]
            lines += ["", f"Silence it: `--ignore {f.id}`. Details: `dldoctor explain {f.id}`.", ""]
    else:
        lines += ["No problems found.", ""]
    report = diagnosis.reports.get("bias_variance")
    if report:
        rows = [("irreducible", report.get("irreducible") or 0.0), *report.get("components", {}).items()]
        scale = max([abs(v) for _, v in rows] + [1e-12])
        lines += [f"**Error decomposition** ({report.get('unit', 'error')})", "", "| part | value | |", "|---|---|---|"]
        lines += [f"| {name} | {value:+.3f} | {'█' * max(0, round(20 * value / scale)) if value > 0 else ''} |"
                  for name, value in rows]
        lines.append("")
    if diagnosis.measurements:
        lines += ["**Measurements**", "", "| measurement | value | what |", "|---|---|---|"]
        lines += [f"| `{name}` | {_cell(value)} | {_cell(title)} |" for name, value, title in
                  measurement_rows(diagnosis.measurements)]
        lines.append("")
    if diagnosis.checks:
        lines += ["<details><summary>Checks</summary>", "", "| check | stage | status | time | note |",
                  "|---|---|---|---|---|"]
        for c in diagnosis.checks:
            lines.append(f"| {c.name} | {c.stage} | {c.status.value} | {c.duration_s:.2f} s | {_cell(c.reason)} |")
        lines += ["", "</details>", ""]
    errored = [c for c in diagnosis.checks if c.status is CheckStatus.ERRORED]
    if diagnosis.watched_text:
        lines += [diagnosis.watched_text, ""]
    if summary_line(diagnosis):
        lines += [summary_line(diagnosis), ""]
    lines.append(f"seed {diagnosis.seed} · device {diagnosis.device} · {diagnosis.duration_s:.1f} s"
                 + (f" · {len(errored)} check(s) could not finish" if errored else "")
                 + (" · interrupted: a partial report" if diagnosis.interrupted else ""))
    return "\n".join(lines) + "\n"
