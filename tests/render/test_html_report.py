"""The HTML report without a browser: well-formed, self-contained, escaped, and its plots' data.

The browser test (tests/render/test_html_browser.py) opens a real run's page in headless
Chromium; these run in a second on prebuilt diagnoses.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from dldoctor.core.diagnosis import CheckResult, Diagnosis
from dldoctor.core.finding import Finding
from dldoctor.render import OutputFormat, render
from dldoctor.render.series import MAX_POINTS, overfit_series, thin_indices, training_series
from tests.conftest import run_cli

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "col", "area", "base", "wbr"}
HOSTILE = "<script>alert('x')</script> & \"quotes\""


class Page(HTMLParser):
    """Tags, attributes and text of a page; fails on a closing tag that does not match."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1] if self.open else 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.errors, page.errors[:5]
    assert not page.open, f"unclosed: {page.open}"
    return page


def curve(label: str, losses, lr: float = 0.01):
    return SimpleNamespace(label=label, losses=tuple(losses), lr=lr)


def epoch(i: int, train: float, val: float):
    score = SimpleNamespace
    return SimpleNamespace(epoch=i, train=score(loss=train, error=train / 2), val=score(loss=val, error=val / 2),
                           test=None)


SERIES = {
    "overfit": overfit_series([curve("lr x10", [2.3, 1.0, float("nan")], 0.1),
                               curve("as configured", [2.3 - 0.01 * i for i in range(50)])]),
    "training": training_series(SimpleNamespace(error_name="1 - accuracy", epochs=tuple(
        epoch(i, 1.0 / i, 1.2 / i) for i in range(1, 5)))),
    "resources": {"run": "short training run", "memory_source": "test", "memory_steps": [0, 1, 2, 3],
                  "memory_bytes": [2**20, 2**21, 2**21, 3 * 2**20], "time_steps": [0, 1, 2, 3],
                  "compute_s": [0.01, 0.011, 0.009, 0.01], "wait_s": [0.001, 0.002, None, 0.001]},
}
REPORTS = {"bias_variance": {"unit": "1 - accuracy", "irreducible": 0.0,
                             "components": {"bias": 0.08, "variance": 0.07}}}

DIAGNOSIS = Diagnosis(
    dldoctor_version="0.1.0", target="examples/<odd> & name.py",
    diagnoses=(
        Finding(id="lr-too-low", severity="error", confidence=0.9, title=HOSTILE, check="overfit-batch",
                evidence=("loss 2.30 -> 2.29 in 200 steps", "a traceback\n  line 2 <b>bold</b>"),
                fixes=("Raise the learning rate to 0.1.", "Run dldoctor tune --lr-finder."),
                location="optimizer", stage="overfit", rank=1),
        Finding(id="class-imbalance", severity="info", confidence=0.5, title="classes are 90/10", check="data",
                stage="data", rank=2, explained_by="lr-too-low"),
    ),
    checks=(CheckResult("overfit-batch", "overfit", "failed", 0.3),
            CheckResult("data-shift", "data", "skipped", 0.0, "no <val> loader")),
    seed=3, device="cpu", duration_s=2.5, reports=REPORTS, series=SERIES,
)


def with_measurements(diagnosis: Diagnosis) -> Diagnosis:
    if "measurements" not in {f.name for f in dataclasses.fields(Diagnosis)}:
        pytest.skip("Diagnosis has no measurements field yet")
    return dataclasses.replace(diagnosis, measurements={
        "memory.peak_bytes": {"value": 70416, "unit": "B", "noise": None, "better": "lower",
                              "check": "memory-model", "title": "peak <memory>"},
        "short_run.val_error": {"value": 0.43, "unit": "1 - accuracy", "noise": 0.04, "better": "lower",
                                "check": "bias-variance", "title": "val error"}})


def test_page_is_well_formed_with_every_section_and_escapes_text():
    page = parse(render(with_measurements(DIAGNOSIS), OutputFormat.HTML))
    assert {"summary", "diagnosis", "measurements", "plots", "checks", "finding-1", "finding-2"} <= set(page.ids())
    text = "".join(page.text)
    assert HOSTILE in text  # shown as text...
    assert not page.all("script")  # ...never run
    assert not page.all("b")
    assert "examples/<odd> & name.py" in text
    assert "no <val> loader" in text
    assert "explained by" in text and "peak <memory>" in text
    fixes = page.all("ol", "fixes")
    assert len(fixes) == 1


def test_page_fetches_nothing_from_the_network():
    text = render(DIAGNOSIS, OutputFormat.HTML)
    page = parse(text)
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "data", "action"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("data:"), f"<{tag} {name}={value[:60]}> is not inline"
    assert "http://" not in text and "https://" not in text
    assert "@import" not in text and "url(" not in text


def test_plots_are_inline_svgs_from_the_series():
    pytest.importorskip("matplotlib")
    page = parse(render(DIAGNOSIS, OutputFormat.HTML))
    figures = [a["id"] for a in page.all("figure")]
    assert figures == ["plot-overfit", "plot-training", "plot-decomposition", "plot-resources"]
    images = page.all("img", "plot")
    assert len(images) == 4
    for image in images:
        assert image["alt"]
        head, _, data = image["src"].partition(",")
        assert head == "data:image/svg+xml;base64"
        svg = base64.b64decode(data).decode()
        assert "<svg" in svg and "<path" in svg  # drawn, not an empty frame
        assert 'href="http' not in svg and "url(http" not in svg  # nothing fetched at view time


def test_without_matplotlib_the_page_says_how_to_get_plots(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    page = parse(render(DIAGNOSIS, OutputFormat.HTML))
    assert not page.all("img", "plot")
    assert "dldoctor[plot]" in "".join(page.text)
    assert "plots" in page.ids()


def test_a_run_without_curves_says_so():
    plain = dataclasses.replace(DIAGNOSIS, series={}, reports={})
    page = parse(render(plain, OutputFormat.HTML))
    assert not page.all("figure")
    assert "no curve to plot" in "".join(page.text)


def test_series_survive_the_json_report_and_draw_the_same_page():
    data = json.loads(render(DIAGNOSIS, OutputFormat.JSON))
    assert data["series"]["overfit"][0]["label"] == "as configured"
    assert data["series"]["overfit"][1]["loss"] == [2.3, 1.0, None]  # NaN is written as null
    again = Diagnosis.from_dict(data)
    assert again == DIAGNOSIS
    assert render(again, OutputFormat.HTML) == render(DIAGNOSIS, OutputFormat.HTML)


def test_a_report_without_series_has_no_series_key():
    data = json.loads(render(dataclasses.replace(DIAGNOSIS, series={}), OutputFormat.JSON))
    assert "series" not in data
    assert Diagnosis.from_dict(data).series == {}


def test_hand_edited_series_give_a_note_not_a_traceback():
    pytest.importorskip("matplotlib")
    broken = dataclasses.replace(DIAGNOSIS, series={"overfit": [{"label": "x", "steps": [0, 1], "loss": "abc"}]},
                                 reports={})
    page = parse(render(broken, OutputFormat.HTML))
    assert not page.all("img", "plot")
    assert "could not be drawn" in "".join(page.text)


def test_long_series_are_thinned_keeping_both_ends():
    keep = thin_indices(1000)
    assert len(keep) == MAX_POINTS and keep[0] == 0 and keep[-1] == 999 and keep == sorted(set(keep))
    assert thin_indices(5) == [0, 1, 2, 3, 4]
    (entry,) = overfit_series([curve("as configured", [math.exp(-i / 100) for i in range(1000)])])
    assert len(entry["steps"]) == len(entry["loss"]) == MAX_POINTS
    assert entry["steps"][-1] == 999 and entry["baseline"] is True


def test_baseline_accepted_and_source_line_when_the_report_has_them():
    fields = {f.name for f in dataclasses.fields(Finding)}
    if not {"accepted", "baseline", "file", "line"} <= fields or "baseline" not in {
            f.name for f in dataclasses.fields(Diagnosis)}:
        pytest.skip("findings carry no accepted/baseline/file fields yet")
    finding = dataclasses.replace(DIAGNOSIS.diagnoses[0], accepted="known: <tiny> model", baseline="known",
                                  file="train.py", line=12)
    fresh = dataclasses.replace(DIAGNOSIS.diagnoses[1], baseline="new")
    baseline = {"file": "base.json", "known": 1, "new": 1,
                "fixed": [{"id": "nan-loss", "check": "numerics", "location": "model.fc"}]}
    page = parse(render(dataclasses.replace(DIAGNOSIS, diagnoses=(finding, fresh), baseline=baseline),
                        OutputFormat.HTML))
    badges = {a.get("class") for a in page.all("span")}
    assert {"badge badge-known", "badge badge-accepted", "badge badge-new"} <= badges
    text = "".join(page.text)
    assert "known: <tiny> model" in text
    assert "optimizer (train.py:12)" in text
    assert "1 new, 1 known, 1 fixed" in text and "nan-loss" in text


def test_cli_writes_an_html_report(tmp_path):
    out = tmp_path / "bv.html"
    proc = run_cli("bias-variance", "--train", "0.08", "--val", "0.15", "--format", "html", "--output", out)
    assert proc.returncode in (0, 1), proc.stderr
    page = parse(out.read_text())
    assert {"summary", "diagnosis", "plots", "checks"} <= set(page.ids())
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert [a["id"] for a in page.all("figure")] == ["plot-decomposition"]


@pytest.mark.slow
def test_the_plot_worker_draws_the_same_figures_and_gives_way_on_other_data():
    """The worker process (started by the CLI before the checks) draws what the report's
    own process would; handed other data than it is asked for, it is not used."""
    pytest.importorskip("matplotlib")
    from dldoctor.render import plot_worker
    from dldoctor.render.figures import draw_all

    series, reports = DIAGNOSIS.series, DIAGNOSIS.reports
    here = draw_all(series, reports, here=True)
    plot_worker.start()
    drawn = plot_worker.draw(series, reports)
    assert drawn is not None
    assert [(p.id, p.title, p.error) for p in drawn] == [(p.id, p.title, p.error) for p in here]
    assert all(p.uri.startswith("data:image/svg+xml;base64,") for p in drawn)
    plot_worker.start()
    plot_worker.submit(series, reports)
    assert plot_worker.draw({}, reports) is None  # given other data: the caller draws itself
    assert plot_worker.draw(series, reports) is None  # one message per worker; none is left
