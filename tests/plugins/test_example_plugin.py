"""The example plugin (examples/plugin) installs with pip and works through the real CLI.

A fresh virtual environment that sees the test environment's packages (dldoctor, torch,
setuptools, pip) gets the example installed the way a user would (offline: no build
isolation, no dependencies fetched); its ``python -m dldoctor`` then lists the check,
explains its ID, and reports it, with the fixes of its catalogue entry, on a model that
starts far from the class frequencies, reading its own config key from ``--config``.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin"
CHECK, ID = "class-prior-at-init", "init-ignores-class-prior"

TARGET = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = {labels}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

def dldoctor_spec():
    return {{
        "model": Net,
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""
IMBALANCED = "(X[:, 0] > 1.28).long()"  # about 10% positives: KL(p || 50/50) is about 0.37 nats
BALANCED = "(X[:, 0] > 0).long()"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> Path:
    """The python of a venv that has the example plugin installed and sees this environment's packages."""
    root = tmp_path_factory.mktemp("plugin-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # --system-site-packages sees the base interpreter's packages, not this venv's: add ours
    # (addsitedir also reads their .pth files, e.g. dldoctor's editable install).
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "_outer_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    build = root / "src"  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    subprocess.run(["cp", "-r", str(EXAMPLE), str(build)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", str(build)],
                          capture_output=True, text=True, timeout=180, env=_env(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD")}
    env["PIP_NO_INPUT"] = "1"
    return env


def _dldoctor(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "dldoctor", *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=120, check=False)


def _run_json(python: Path, target: Path, config: Path) -> dict:
    proc = _dldoctor(python, "run", str(target), "--format", "json", "--select", CHECK, "--config", str(config),
                     "--device", "cpu", cwd=target.parent)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None


@pytest.mark.slow
def test_the_example_plugin_installs_and_reports_its_own_diagnosis(plugin_python, tmp_path):
    listing = _dldoctor(plugin_python, "checks", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    [row] = [line for line in listing.stdout.splitlines() if line.startswith(CHECK)]
    assert ID in row and "plugin:dldoctor-example-plugin" in row

    shown = _dldoctor(plugin_python, "explain", ID, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{ID}: The output layer starts far from the class frequencies")
    assert "1. Initialise the last layer's bias to the log class frequencies" in " ".join(shown.stdout.split())

    config = tmp_path / "plugin.yaml"
    config.write_text("class_prior_init:\n  max_kl_nats: 0.2\n  batches: 8\n")
    sick = tmp_path / "imbalanced.py"
    sick.write_text(textwrap.dedent(TARGET.format(labels=IMBALANCED)))
    report = _run_json(plugin_python, sick, config)
    [finding] = [d for d in report["diagnoses"] if d["id"] == ID]
    assert finding["check"] == CHECK and finding["severity"] == "warning"
    assert finding["metrics"]["max_kl_nats"] == 0.2  # read from --config
    assert finding["metrics"]["samples"] == 256  # batches: 8 of 32, from --config
    assert 0.25 < finding["metrics"]["kl_nats"] < 0.6
    assert finding["fixes"][0].startswith("Initialise the last layer's bias to the log class frequencies")
    assert len(finding["fixes"]) == 3

    healthy = tmp_path / "balanced.py"
    healthy.write_text(textwrap.dedent(TARGET.format(labels=BALANCED)))
    report = _run_json(plugin_python, healthy, config)
    assert not [d for d in report["diagnoses"] if d["id"] == ID]
    assert {c["name"]: c["status"] for c in report["checks"]}[CHECK] == "passed"

    config.write_text("class_prior_init:\n  max_kl_nats: -1\n")
    refused = _dldoctor(plugin_python, "run", str(sick), "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 2
    assert "class_prior_init.max_kl_nats = -1 is out of range: must be > 0 (nats)" in refused.stderr
