"""HTML output: one self-contained page (inline CSS, plots as SVG data URIs) to attach to a CI run.

Nothing is fetched when the page is opened: no script, no font, no stylesheet or
image from the network. Every piece of text from the run (titles, evidence, the
target's name) is escaped. The plots need matplotlib (``pip install 'dldoctor[plot]'``);
without it the page says so where the plots would be. Sections carry stable ids
(``summary``, ``diagnosis``, ``measurements``, ``plots``, ``checks``) and each plot is an
``<img class="plot">`` inside ``<figure id="plot-...">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

from dldoctor.core.diagnosis import CheckStatus, Diagnosis
from dldoctor.core.finding import Finding

_STATUS_TEXT = {"healthy": "healthy", "warning": "warning", "error": "error",
                "incomplete": "incomplete (not everything was checked)"}

_CSS = """
:root { --error: #c62828; --warning: #b26a00; --info: #1565c0; --ok: #2e7d32; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
header#summary { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.25rem; }
h1 { font-size: 1.4rem; margin: 0 0 .4rem; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 0 0 .3rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
pre { background: #f3f3f3; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
.status { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; color: #fff; font-weight: 600; }
.status-healthy { background: var(--ok); } .status-warning { background: var(--warning); }
.status-error { background: var(--error); } .status-incomplete { background: var(--muted); }
dl.facts { display: flex; flex-wrap: wrap; gap: .2rem 1.5rem; margin: .6rem 0 0; }
dl.facts div { display: flex; gap: .4rem; } dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.note { color: var(--muted); }
article.finding { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--muted);
                  border-radius: 6px; padding: .8rem 1rem; margin: .7rem 0; }
article.severity-error { border-left-color: var(--error); }
article.severity-warning { border-left-color: var(--warning); }
article.severity-info { border-left-color: var(--info); }
.badge { display: inline-block; font-size: .78rem; padding: 0 .45rem; border-radius: .7rem; margin-right: .3rem;
         border: 1px solid currentColor; }
.badge-error { color: var(--error); } .badge-warning { color: var(--warning); } .badge-info { color: var(--info); }
.badge-known, .badge-accepted { color: var(--muted); } .badge-new { color: var(--error); }
.meta { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.check-failed td:nth-child(3) { color: var(--warning); } .check-errored td:nth-child(3) { color: var(--error); }
.check-skipped { color: var(--muted); }
figure { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: .8rem 0; padding: .6rem; }
img.plot { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
footer { color: var(--muted); font-size: .85rem; margin: 2rem 0 1rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _e(value if value is not None else "")
    if isinstance(value, int):
        return f"{value:,}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if not math.isfinite(number):
        return _e(number)
    return f"{number:.4g}"


def _facts(diagnosis: Diagnosis) -> list[tuple[str, str]]:
    facts = [("command", diagnosis.command), ("seed", str(diagnosis.seed)), ("device", diagnosis.device),
             ("duration", f"{diagnosis.duration_s:.1f} s"), ("profile", diagnosis.profile),
             ("dldoctor", diagnosis.dldoctor_version)]
    coverage = diagnosis.coverage
    if coverage["checks"]:
        facts.append(("checks", f"{coverage['passed']} passed, {coverage['failed']} failed, "
                                f"{coverage['skipped']} skipped, {coverage['errored']} errored"))
    return facts


def _header(diagnosis: Diagnosis) -> list[str]:
    status = diagnosis.status
    out = ['<header id="summary">',
           f'<h1>dldoctor: <code>{_e(diagnosis.target)}</code></h1>',
           f'<p><span class="status status-{_e(status)}">{_e(_STATUS_TEXT.get(status, status))}</span>'
           f' &nbsp;{len(diagnosis.diagnoses)} finding(s)</p>',
           '<dl class="facts">']
    out += [f"<div><dt>{_e(name)}</dt><dd>{_e(value)}</dd></div>" for name, value in _facts(diagnosis)]
    out.append("</dl>")
    if diagnosis.watched_text:
        out.append(f'<p class="watched">{_e(diagnosis.watched_text)}</p>')
    if diagnosis.interrupted:
        out.append('<p class="note">Interrupted: a partial report.</p>')
    baseline = getattr(diagnosis, "baseline", None)
    if isinstance(baseline, Mapping) and baseline:
        out += _baseline_summary(baseline)
    out.append("</header>")
    return out


def _baseline_summary(baseline: Mapping[str, Any]) -> list[str]:
    fixed = list(baseline.get("fixed") or [])
    out = [f'<p class="baseline">Compared with the baseline <code>{_e(baseline.get("file", ""))}</code>: '
           f'{_e(baseline.get("new", 0))} new, {_e(baseline.get("known", 0))} known, {len(fixed)} fixed.</p>']
    if fixed:
        out.append('<ul class="fixed">')
        out += [f"<li>fixed: <code>{_e(item.get('id', ''))}</code> ({_e(item.get('check', ''))}"
                + (f", {_e(item['location'])}" if item.get("location") else "") + ")</li>"
                for item in fixed if isinstance(item, Mapping)]
        out.append("</ul>")
    return out


def _location(finding: Finding) -> str:
    where = finding.location
    file = getattr(finding, "file", None)
    line = getattr(finding, "line", None)
    if file:
        at = f"{file}:{line}" if line else str(file)
        where = f"{where} ({at})" if where and where != at else at
    return where


def _finding(finding: Finding) -> list[str]:
    severity = finding.severity.value
    badges = [f'<span class="badge badge-{_e(severity)}">{_e(severity)}</span>']
    known = getattr(finding, "baseline", None)
    if known in ("new", "known"):
        badges.append(f'<span class="badge badge-{known}">{known}</span>')
    accepted = getattr(finding, "accepted", None)
    if accepted:
        badges.append('<span class="badge badge-accepted">accepted</span>')
    out = [f'<article class="finding severity-{_e(severity)}" id="finding-{finding.rank}">',
           f"<h3>{finding.rank}. {''.join(badges)}<code>{_e(finding.id)}</code>: {_e(finding.title)}</h3>"]
    meta = [f"confidence {finding.confidence:.0%}"]
    where = _location(finding)
    if where:
        meta.append(f"where: <code>{_e(where)}</code>")
    if finding.check:
        meta.append(f"check: {_e(finding.check)}")
    if finding.explained_by:
        meta.append(f"explained by <code>{_e(finding.explained_by)}</code>")
    out.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if accepted:
        out.append(f'<p class="accepted">Accepted in the spec: {_e(accepted)}</p>')
    if finding.evidence:
        out.append('<ul class="evidence">')
        out += [f"<li><pre>{_e(e)}</pre></li>" if "\n" in e else f"<li>{_e(e)}</li>" for e in finding.evidence]
        out.append("</ul>")
    if finding.fixes:
        out.append('<p class="fixes-title">Try, in order:</p><ol class="fixes">')
        out += [f"<li><pre>{_e(fix)}</pre></li>" if "\n" in fix else f"<li>{_e(fix)}</li>" for fix in finding.fixes]
        out.append("</ol>")
    out.append(f'<p class="meta">Details: <code>dldoctor explain {_e(finding.id)}</code> · silence it: '
               f"<code>--ignore {_e(finding.id)}</code></p>")
    out.append("</article>")
    return out


def _diagnosis(diagnosis: Diagnosis) -> list[str]:
    out = ['<section id="diagnosis">', "<h2>Diagnosis</h2>"]
    if not diagnosis.diagnoses:
        out.append('<p class="note">No problems found.</p>')
    for finding in diagnosis.diagnoses:
        out += _finding(finding)
    out.append("</section>")
    return out


def _measurements(measurements: Mapping[str, Any]) -> list[str]:
    out = ['<section id="measurements">', "<h2>Measurements</h2>", "<table>",
           "<thead><tr><th>measurement</th><th>value</th><th>noise</th><th>better</th><th>check</th></tr></thead>",
           "<tbody>"]
    for name, m in measurements.items():
        m = m if isinstance(m, Mapping) else {"value": m}
        title = m.get("title") or ""
        noise = m.get("noise")
        unit = m.get("unit") or ""
        out.append(f"<tr><td><code>{_e(name)}</code>" + (f"<br>{_e(title)}" if title else "") + "</td>"
                   f'<td class="num">{_number(m.get("value"))} {_e(unit)}</td>'
                   f'<td class="num">{"±" + _number(noise) if noise is not None else ""}</td>'
                   f"<td>{_e(m.get('better') or '')}</td><td>{_e(m.get('check') or '')}</td></tr>")
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _plots(diagnosis: Diagnosis) -> list[str]:
    from dldoctor.render.figures import PLOT_HINT, draw_all, have_matplotlib, plot_ids

    series = getattr(diagnosis, "series", None) or {}
    out = ['<section id="plots">', "<h2>Plots</h2>"]
    if not plot_ids(series, diagnosis.reports):
        out += ['<p class="note">This run recorded no curve to plot (the overfit, evaluate and tune stages '
                "record them).</p>", "</section>"]
        return out
    if not have_matplotlib():
        out += [f'<p class="note">The plots need matplotlib, which is not installed: <code>{_e(PLOT_HINT)}</code>, '
                "then render the saved JSON report again or rerun.</p>", "</section>"]
        return out
    for plot in draw_all(series, diagnosis.reports):
        out.append(f'<figure id="plot-{_e(plot.id)}">')
        if plot.uri:
            out.append(f'<img class="plot" alt="{_e(plot.title)}" src="{plot.uri}">')
        else:
            out.append(f'<p class="note">{_e(plot.title)}: {_e(plot.error)}</p>')
        out += [f"<figcaption><strong>{_e(plot.title)}.</strong> {_e(plot.caption)}</figcaption>", "</figure>"]
    out.append("</section>")
    return out


def _checks(diagnosis: Diagnosis) -> list[str]:
    out = ['<section id="checks">', "<h2>Checks</h2>"]
    if not diagnosis.checks:
        out += ['<p class="note">No check ran.</p>', "</section>"]
        return out
    out += ["<table>", "<thead><tr><th>check</th><th>stage</th><th>status</th><th>time</th><th>note</th></tr></thead>",
            "<tbody>"]
    out += [f'<tr class="check-{_e(c.status.value)}"><td>{_e(c.name)}</td><td>{_e(c.stage)}</td>'
            f'<td>{_e(c.status.value)}</td><td class="num">{c.duration_s:.2f} s</td><td>{_e(c.reason)}</td></tr>'
            for c in diagnosis.checks]
    out += ["</tbody>", "</table>"]
    errored = [c.name for c in diagnosis.checks if c.status is CheckStatus.ERRORED]
    if errored:
        out.append(f'<p class="note">Could not finish: {_e(", ".join(errored))}.</p>')
    out.append("</section>")
    return out


def _lines(parts: Iterable[list[str]]) -> list[str]:
    return [line for part in parts for line in part]


def render(diagnosis: Diagnosis) -> str:
    """The whole report as one HTML document."""
    measurements = getattr(diagnosis, "measurements", None) or {}
    body = _lines([
        _header(diagnosis),
        _diagnosis(diagnosis),
        _measurements(measurements) if measurements else [],
        _plots(diagnosis),
        _checks(diagnosis),
    ])
    title = f"dldoctor: {diagnosis.target} ({diagnosis.status})"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        '<link rel="icon" href="data:,">',  # no favicon request
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        *body,
        f"<footer>dldoctor {_e(diagnosis.dldoctor_version)} · <code>dldoctor {_e(diagnosis.command)}</code> · "
        f"seed {diagnosis.seed} · same input and seed, same diagnosis</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]) + "\n"
