"""The HTML report of a real run, opened in headless Chromium.

A zoo case run through the run, overfit and evaluate stages (single-batch curves with
experiments, a short training run, the error decomposition, memory and step time) is
written as JSON, read back, rendered to HTML and opened from disk: the browser must
report no error, show every section, and load every plot. The screenshot goes to the
test's ``tmp_path`` and, with ``DLDOCTOR_TEST_ARTIFACTS`` set (``.ci/run`` sets it), to
that folder too.

Needs Chromium, its WebDriver (Debian: ``apt-get install chromium chromium-driver``,
which ``.ci/run`` does) and selenium (requirements-dev.txt); skips, saying which is
missing, without them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, diagnose_file

pytestmark = pytest.mark.slow

CASE = REPO / "examples" / "bugs" / "fit_lr_low_mlp_sgd.py"
SECTIONS = ("summary", "diagnosis", "plots", "checks")
EXPECTED_PLOTS = {"plot-overfit", "plot-training", "plot-decomposition", "plot-resources"}


def _browser() -> tuple[str, str]:
    """Paths of Chromium and chromedriver, or a skip naming what is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -r requirements-dev.txt)")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: the page would have no plots")
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver",) if os.access(p, os.X_OK)), None)
    if chromium is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None)
        pytest.skip(f"{missing} not found (apt-get install chromium chromium-driver; .ci/run installs them)")
    return chromium, driver


def _keep(paths: list[Path]) -> None:
    folder = os.environ.get("DLDOCTOR_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy(path, Path(folder) / path.name)


def test_report_of_a_real_run_opens_cleanly_in_headless_chromium(tmp_path):
    chromium, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.core.stage import Stage
    from dldoctor.render import OutputFormat, render

    diagnosis = diagnose_file(CASE, stages=(Stage.RUN, Stage.OVERFIT, Stage.EVALUATE))
    assert diagnosis.status != "incomplete", [f.title for f in diagnosis.diagnoses]
    assert len(diagnosis.series.get("overfit", [])) >= 2, "expected the run as configured and an experiment"
    saved = tmp_path / "report.json"
    saved.write_text(render(diagnosis, OutputFormat.JSON))
    page = tmp_path / "html_report.html"
    page.write_text(render(Diagnosis.from_dict(json.loads(saved.read_text())), OutputFormat.HTML))

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    shot = tmp_path / "html_report.png"
    try:
        driver.get(page.as_uri())
        severe = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        assert not severe, severe
        sections = [*SECTIONS, *(("measurements",) if getattr(diagnosis, "measurements", None) else ())]
        for section in sections:
            element = driver.find_element(By.ID, section)
            assert element.is_displayed(), f"section #{section} is not visible"
        figures = {f.get_attribute("id") for f in driver.find_elements(By.CSS_SELECTOR, "#plots figure")}
        assert figures >= EXPECTED_PLOTS, figures
        images = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.plot'))"
            ".map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) >= len(EXPECTED_PLOTS)
        for alt, complete, width, height in images:
            assert alt and complete and width > 0 and height > 0, (alt, complete, width, height)
        title = driver.find_element(By.CSS_SELECTOR, "#finding-1 h3").text
        assert diagnosis.diagnoses[0].id in title
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(1200, min(max(height, 900), 12000))
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
        _keep([p for p in (page, shot) if p.exists()])
    assert shot.stat().st_size > 10_000
