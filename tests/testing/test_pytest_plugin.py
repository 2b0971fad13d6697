"""The pytest plugin (``pytest --dldoctor``) and :mod:`dldoctor.testing`.

The plugin tests run pytest in a fresh process on a temporary folder, as a model
repository would, and read its exit code, output and JUnit XML.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

import pytest

from tests.conftest import REPO

DIGITS = REPO / "examples" / "digits" / "train.py"
CASE = REPO / "examples" / "bugs" / "dead_mlp_negative_bias.py"  # dead-activations, found by initialization


def copy_into(folder, source):
    """The training file as a model repository holds it: in the folder pytest runs in."""
    target = folder / source.name
    shutil.copyfile(source, target)
    return target.name


def run_pytest(*args, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    installed = any(e.value == "dldoctor.testing.pytest_plugin" for e in entry_points(group="pytest11"))
    plugin = () if installed else ("-p", "dldoctor.testing.pytest_plugin")
    env = {**os.environ, "PYTEST_ADDOPTS": "", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("DLDOCTOR_TEST_DURATIONS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin, *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def run_stage_checks() -> list[str]:
    from dldoctor.core.registry import discover
    from dldoctor.core.stage import Stage

    return [r.check.name for r in discover()[0] if r.check.stage is Stage.RUN]


@pytest.mark.slow
def test_a_healthy_target_passes_one_test_per_check(tmp_path):
    proc = run_pytest("--dldoctor", copy_into(tmp_path, DIGITS), "--dldoctor-stages", "run", "--junitxml",
                      tmp_path / "out.xml", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = ET.parse(tmp_path / "out.xml").getroot().iter("testcase")
    names = [c.get("name") for c in cases]
    assert names == ["entrypoint", *run_stage_checks()]
    suite = next(ET.parse(tmp_path / "out.xml").getroot().iter("testsuite"))
    assert suite.get("failures") == "0" and suite.get("errors") == "0"


@pytest.mark.slow
def test_a_bug_fails_its_check_with_the_evidence_and_the_fixture_works(tmp_path):
    (tmp_path / "test_uses_fixture.py").write_text(
        "import pytest\n\n"
        "def test_assert_healthy_names_the_finding(dldoctor):\n"
        "    with pytest.raises(AssertionError) as caught:\n"
        f"        dldoctor.assert_healthy({str(CASE)!r}, stages='run', select='initialization', device='cpu')\n"
        "    assert 'dead-activations' in str(caught.value)\n"
        "    assert 'Initialise the bias of fc2 to zero' in str(caught.value)\n")
    proc = run_pytest("--dldoctor", copy_into(tmp_path, CASE), "--dldoctor-stages", "run", "--junitxml",
                      tmp_path / "out.xml", "-rA", cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "FAILED dead_mlp_negative_bias.py::dldoctor::initialization" in out
    assert "98% of the units of act (call 2) never fire at initialisation" in out  # the title
    assert "are 0 for every one of the 64 probed values" in out  # the evidence
    assert "1. Initialise the bias of fc2 to zero" in out  # the fixes, in order
    assert "PASSED test_uses_fixture.py::test_assert_healthy_names_the_finding" in out
    root = ET.parse(tmp_path / "out.xml").getroot()
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["initialization"]


@pytest.mark.slow
def test_baseline_and_keyword_selection(tmp_path):
    from dldoctor.core.baseline import baseline_text
    from dldoctor.core.diagnosis import Diagnosis
    from dldoctor.core.finding import Finding

    known = Finding("dead-activations", "error", 0.9, "dead", check="initialization", location="act")
    (tmp_path / "b.json").write_text(baseline_text(Diagnosis("0.1.0", str(CASE), (known,))))
    proc = run_pytest(f"--dldoctor={copy_into(tmp_path, CASE)}", "--dldoctor-stages", "run",
                      "--dldoctor-baseline", "b.json",
                      "-k", "initialization or gradient", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dead_mlp_negative_bias.py::dldoctor::initialization PASSED" in proc.stdout
    assert "deselected" in proc.stdout and "::dldoctor::numerics" not in proc.stdout


def test_without_the_flag_the_plugin_adds_nothing(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    proc = run_pytest("-q", cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_flag_without_a_path_needs_the_ini_option(tmp_path):
    proc = run_pytest("--dldoctor", cwd=tmp_path)
    assert proc.returncode != 0
    assert "dldoctor_targets" in proc.stdout + proc.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ndldoctor_targets = ["nowhere.py"]\n')
    proc = run_pytest("--dldoctor", cwd=tmp_path)
    assert proc.returncode != 0
    assert "--dldoctor nowhere.py: no such file" in proc.stdout + proc.stderr


def test_flag_without_a_path_reads_the_tool_dldoctor_targets_of_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.dldoctor]\ntargets = ["models/nowhere.py"]\n')
    proc = run_pytest("--dldoctor", cwd=tmp_path)
    assert proc.returncode != 0
    assert "nowhere.py: no such file" in proc.stdout + proc.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.dldoctor]\ntargets = "train.py"\n')
    proc = run_pytest("--dldoctor", cwd=tmp_path)
    assert proc.returncode != 0 and "a list of file paths" in proc.stdout + proc.stderr


def test_importing_the_testing_helpers_does_not_import_torch():
    code = ("import sys, dldoctor.testing, dldoctor.testing.pytest_plugin; "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


@pytest.mark.slow
def test_assert_healthy_raises_with_evidence_and_returns_the_diagnosis_when_clean():
    from dldoctor.testing import assert_healthy

    with pytest.raises(AssertionError) as caught:
        assert_healthy(CASE, stages="run", select="initialization", device="cpu")
    text = str(caught.value)
    assert text.startswith("dldoctor found 1 problem in")
    assert "[error] dead-activations (initialization at act)" in text
    assert "are 0 for every one of the 64 probed values" in text
    diagnosis = assert_healthy(CASE, stages="run", select="initialization", ignore="dead-activations",
                               device="cpu")
    assert [c.name for c in diagnosis.checks if c.status.value != "skipped"] == ["initialization"]
