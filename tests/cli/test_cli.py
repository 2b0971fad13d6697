"""The real command on temporary projects: exit codes, JSON contract, messages."""

import subprocess
import sys

import pytest

from tests.conftest import HEALTHY_BODY, REPO, run_cli, run_json

# Each test runs the real command in a fresh process (seconds each).
pytestmark = pytest.mark.slow

CONTRACT_TOP = {"dldoctor_version", "target", "status", "diagnoses", "checks", "seed", "device", "duration_s"}
CONTRACT_FINDING = {"id", "rank", "severity", "confidence", "title", "check", "evidence", "fixes"}

CRASH_BODY = HEALTHY_BODY.replace("nn.Linear(16, 2)", "nn.Linear(12, 2)")


def test_help_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from dldoctor.cli.app import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_healthy_project_exits_zero_with_the_json_contract(make_project):
    proc, report = run_json("run", make_project(HEALTHY_BODY))
    assert proc.returncode == 0, proc.stderr
    assert set(report) >= CONTRACT_TOP
    assert [(d["id"], d["title"], d["evidence"]) for d in report["diagnoses"] if d["severity"] != "info"] == []
    assert report["status"] == "healthy"
    assert all({"name", "stage", "status", "duration_s"} <= set(c) for c in report["checks"])
    assert report["seed"] == 0 and report["device"] == "cpu"


def test_crash_exits_one_with_a_ranked_finding(make_project):
    proc, report = run_json("run", make_project(CRASH_BODY))
    assert proc.returncode == 1
    top = report["diagnoses"][0]
    assert set(top) >= CONTRACT_FINDING
    assert (top["id"], top["rank"], top["severity"], top["location"]) == ("shape-mismatch", 1, "error", "fc2")
    assert 0.0 <= top["confidence"] <= 1.0
    assert report["status"] == "error"


def test_fail_on_never_and_warning(make_project):
    assert run_cli("run", make_project(CRASH_BODY), "--fail-on", "never").returncode == 0


def test_rich_and_markdown_outputs(make_project, tmp_path):
    target = make_project(CRASH_BODY)
    rich = run_cli("run", target)
    assert rich.returncode == 1
    assert "shape-mismatch" in rich.stdout and "Try, in order" in rich.stdout and "Traceback" not in rich.stderr
    out = tmp_path / "report.md"
    md = run_cli("run", target, "--format", "markdown", "--output", out)
    assert md.returncode == 1 and md.stdout == ""
    text = out.read_text()
    assert text.startswith("## dldoctor:") and "| 1 | ❌ error | `shape-mismatch` |" in text


@pytest.mark.parametrize("body,needle", [
    ("x = 1\n", "no torch.optim optimizer stepped"),  # script mode: a file without dldoctor_spec runs
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2)}\n", "missing the required keys"),
    ("def dldoctor_spec():\n    return {'model': 'resnet', 'train_loader': [], 'loss_fn': nn.MSELoss(),"
     " 'optimizer': torch.optim.SGD}\n", "'model' must be an nn.Module"),
    ("def dldoctor_spec():\n    raise FileNotFoundError('data/train.csv')\n", "raised FileNotFoundError"),
    ("def dldoctor_spec():\n    return {'model': lambda: 1 / 0, 'train_loader': [(torch.zeros(2, 2), torch.zeros(2))],"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD}\n", "building the model"),
    ("class Bad(torch.utils.data.Dataset):\n    def __len__(self): return 4\n"
     "    def __getitem__(self, i): raise ValueError('corrupt record')\n"
     "def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': DataLoader(Bad()),"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD}\n", "iterating the train_loader"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': [(torch.zeros(2, 2),)],"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD}\n", "not an (inputs, targets) pair"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': [],"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD}\n", "yielded no batches"),
])
def test_every_entrypoint_problem_exits_two_without_a_dldoctor_traceback(make_project, body, needle):
    target = make_project(body)
    proc = run_cli("run", target)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stdout + proc.stderr
    assert "dldoctor/" not in proc.stdout + proc.stderr  # no frame of ours
    proc, report = run_json("run", target)
    assert proc.returncode == 2
    assert report["diagnoses"][0]["id"] == "entrypoint-error" and report["status"] == "error"
    assert needle in proc.stderr


def test_missing_file_and_bad_options(tmp_path):
    proc = run_cli("run", tmp_path / "nope.py")
    assert proc.returncode == 2 and "file not found" in proc.stdout + proc.stderr
    proc = run_cli("run", tmp_path / "nope.py", "--select", "lr-to-high")
    assert proc.returncode == 2 and "lr-too-high" in proc.stderr
    proc = run_cli("run", tmp_path / "nope.py", "--profile", "turbo")
    assert proc.returncode == 2 and "unknown profile" in proc.stderr
    assert run_cli("run", tmp_path / "nope.py", "--format", "yaml").returncode == 2


def test_users_traceback_is_shown_trimmed(make_project):
    proc = run_cli("run", make_project("def dldoctor_spec():\n    return load()\n\ndef load():\n"
                                       "    raise RuntimeError('no data here')\n"))
    assert proc.returncode == 2
    assert "in load" in proc.stderr and "RuntimeError: no data here" in proc.stderr
    assert "Traceback (your code" in proc.stderr and "site-packages" not in proc.stderr


def test_explain_and_checks():
    proc = run_cli("explain", "loss-input-probabilities")
    assert proc.returncode == 0 and "Fixes, in order" in proc.stdout
    proc = run_cli("explain", "lr-to-high")
    assert proc.returncode == 2 and "lr-too-high" in proc.stderr
    proc = run_cli("checks")
    assert proc.returncode == 0 and "forward-pass" in proc.stdout and "shape-mismatch" in proc.stdout


def test_config_file_and_pyproject_errors_exit_two(make_project, tmp_path):
    target = make_project(HEALTHY_BODY)
    (tmp_path / "pyproject.toml").write_text("[tool.dldoctor.run]\nsede = 1\n")
    proc = run_cli("run", target)
    assert proc.returncode == 2 and "unknown config key 'run.sede'" in proc.stderr


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "dldoctor", "--version"], capture_output=True, text=True, check=False,
                          cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.startswith("dldoctor ")
