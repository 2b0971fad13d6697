"""Script mode as one rank of a torchrun group: one report from rank 0 with every rank's record.

Every run here is the real CLI with 2 gloo ranks on the CPU, through ``dldoctor run --nproc-per-node 2``
(torch's elastic launcher) or ``torchrun -m dldoctor run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dldoctor.checks.distributed.duplicate_data import judge_duplicate_data
from dldoctor.checks.distributed.same_order import judge_same_order
from dldoctor.distributed import rank_env
from dldoctor.distributed.launch import rank_argv
from dldoctor.loading.script.record import WatchedLoop

REPO = Path(__file__).resolve().parents[2]

DDP_SCRIPT = """\
import argparse
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--sampler", default="distributed")
parser.add_argument("--set-epoch", type=int, default=1)
args = parser.parse_args()

dist.init_process_group("gloo")
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = (X[:, 0] + X[:, 1] > 0).long()
data = TensorDataset(X, y)
if args.sampler == "distributed":
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
else:
    sampler = None
    loader = DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
model = DDP(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(args.epochs):
    if sampler is not None and args.set_epoch:
        sampler.set_epoch(epoch)
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
dist.destroy_process_group()
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DLDOCTOR_GATHER_TIMEOUT_S": "60"}


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "train_ddp.py"
    path.write_text(textwrap.dedent(DDP_SCRIPT))
    return path


def _run(cmd: list[str], tmp_path: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=tmp_path, env=ENV, check=False, capture_output=True, text=True, timeout=timeout)
    return proc


def _ranks_left(tmp_path: Path) -> list[str]:
    """Processes still running with this test's folder in their command line (none may be left behind)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], check=False, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(tmp_path) in line]


def _report(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.stdout.strip(), f"no report on stdout; stderr:\n{proc.stderr[-4000:]}"
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON report:\n{proc.stdout[:2000]}\nstderr:\n{proc.stderr[-3000:]}")


def test_rank_env_reads_torchrun_variables() -> None:
    assert rank_env({}) is None
    assert rank_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert rank_env({"RANK": "x", "WORLD_SIZE": "2"}) is None
    assert rank_env({"RANK": "2", "WORLD_SIZE": "2"}) is None
    env = rank_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert env is not None and env.rank == 1 and env.world_size == 2 and not env.leader


def test_rank_argv_drops_only_the_launch_option() -> None:
    argv = ["run", "t.py", "--nproc-per-node", "2", "--format", "json", "--", "--nproc-per-node", "9"]
    assert rank_argv(argv) == ["run", "t.py", "--format", "json", "--", "--nproc-per-node", "9"]
    assert rank_argv(["run", "t.py", "--nproc-per-node=2"]) == ["run", "t.py"]


@pytest.mark.slow
def test_nproc_per_node_gives_one_report_with_both_ranks(tmp_path: Path) -> None:
    script = _script(tmp_path)
    proc = _run([sys.executable, "-m", "dldoctor", "run", str(script), "--nproc-per-node", "2", "--format", "json",
                 "--watch-steps", "12", "--fail-on", "never", "--", "--epochs", "3"], tmp_path)
    report = _report(proc)  # exactly one JSON document on stdout: rank 1 wrote none
    ranks = report["reports"]["ranks"]
    assert ranks["world_size"] == 2
    per_rank = ranks["per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]
    assert all("missing" not in r for r in per_rank), per_rank
    assert [r["steps"] for r in per_rank] == [12, 12]
    assert all(r["ddp"] and r["sampler"]["distributed"] and r["sampler"]["shuffle"] for r in per_rank)
    assert all(r["per_rank_batch"] == 16 for r in per_rank)
    assert report["reports"]["watched_loop"]["steps_watched"] == 12
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _ranks_left(tmp_path)


@pytest.mark.slow
def test_exit_code_is_rank_zeros(tmp_path: Path) -> None:
    """The launcher exits with rank 0's code: 2 for a script that raises before training, 0 for a healthy one."""
    script = _script(tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("import torch.distributed as dist\ndist.init_process_group('gloo')\nraise ValueError('boom')\n")
    proc = _run([sys.executable, "-m", "dldoctor", "run", str(broken), "--nproc-per-node", "2", "--format", "json"],
                tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "boom" in proc.stderr
    proc = _run([sys.executable, "-m", "dldoctor", "run", str(script), "--nproc-per-node", "2", "--format", "json",
                 "--watch-steps", "8", "--select", "stale-gradients"], tmp_path)
    assert json.loads(proc.stdout)["reports"]["ranks"]["world_size"] == 2
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _ranks_left(tmp_path)


@pytest.mark.slow
def test_torchrun_runs_dldoctor_as_each_rank(tmp_path: Path) -> None:
    script = _script(tmp_path)
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "0",
                 "-m", "dldoctor", "run", str(script), "--format", "json", "--watch-steps", "10",
                 "--fail-on", "never"], tmp_path)
    report = _report(proc)
    per_rank = report["reports"]["ranks"]["per_rank"]
    assert [r["steps"] for r in per_rank] == [10, 10]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _ranks_left(tmp_path)


# -- the first two ddp checks --------------------------------------------------------------------------


def _loop(*ranks: dict) -> WatchedLoop:
    loop = WatchedLoop(script="t.py", argv=["t.py"])
    loop.ranks = list(ranks)
    return loop


def _rank(rank: int, prints: list[str], starts: list[int] = (), shuffle: bool = True, epochs: list[int] = ()) -> dict:
    return {"rank": rank, "fingerprints": prints, "epoch_starts": list(starts),
            "sampler": {"class": "DistributedSampler", "distributed": True, "shuffle": shuffle,
                        "epochs": list(epochs)}}


def test_duplicate_data_judged_from_fingerprints() -> None:
    same = [f"b{i}" for i in range(8)]
    verdict = judge_duplicate_data(_loop(_rank(0, same), _rank(1, list(same))))
    assert verdict is not None and verdict.diagnosis_id == "ddp-duplicate-data"
    assert verdict.metrics["same_steps"] == 8
    assert judge_duplicate_data(_loop(_rank(0, same), _rank(1, [f"c{i}" for i in range(8)]))) is None
    assert judge_duplicate_data(_loop(_rank(0, same))) is None  # one rank: nothing to compare
    assert judge_duplicate_data(_loop(_rank(0, same), {"rank": 1, "missing": "no record"})) is None


def test_same_order_judged_from_epochs() -> None:
    epoch = [f"b{i}" for i in range(4)]
    repeated = _rank(0, epoch + epoch, starts=[4], epochs=[0, 0])
    verdict = judge_same_order(_loop(repeated, _rank(1, [f"c{i}" for i in range(8)], starts=[4])))
    assert verdict is not None and verdict.diagnosis_id == "ddp-same-order"
    assert any("set_epoch was never called" in e for e in verdict.evidence)
    reshuffled = _rank(0, epoch + [f"d{i}" for i in range(4)], starts=[4], epochs=[0, 1])
    assert judge_same_order(_loop(reshuffled, _rank(1, [f"c{i}" for i in range(8)], starts=[4]))) is None
    # An unshuffled loader repeats its order on purpose.
    assert judge_same_order(_loop(_rank(0, epoch + epoch, starts=[4], shuffle=False),
                                  _rank(1, epoch + epoch, starts=[4], shuffle=False))) is None


def test_replicas_judged_from_parameter_checksums_not_buffers() -> None:
    from dldoctor.checks.distributed.replicas_diverged import judge_replicas_diverged

    def sums(params: list[float], buffers: float = 0.0) -> dict:
        return {"params": sum(params), "buffers": buffers, "per_param": params, "per_buffer": [buffers]}

    same = {"0": sums([1.5, -2.25]), "1": sums([1.25, -2.0])}
    assert judge_replicas_diverged(_loop({"rank": 0, "checksums": same}, {"rank": 1, "checksums": same})) is None
    # Batch-norm statistics differ at step time in a healthy DDP run (each rank's forward updates them).
    other_buffers = {k: {**v, "buffers": 7.0, "per_buffer": [7.0]} for k, v in same.items()}
    assert judge_replicas_diverged(_loop({"rank": 0, "checksums": same},
                                         {"rank": 1, "checksums": other_buffers})) is None
    drifted = {"0": sums([1.5, -2.25]), "1": sums([1.25, -2.0 + 1e-4])}
    verdict = judge_replicas_diverged(_loop({"rank": 0, "checksums": same}, {"rank": 1, "checksums": drifted}))
    assert verdict is not None and verdict.metrics["first_step"] == 1 and verdict.metrics["tensors_differing"] == 1
    seeded = {"0": sums([0.5, -2.25]), "1": sums([0.25, -2.0])}
    verdict = judge_replicas_diverged(_loop({"rank": 0, "checksums": same}, {"rank": 1, "checksums": seeded}))
    assert verdict is not None and verdict.metrics["first_step"] == 0
    assert any("before the first step" in e for e in verdict.evidence)
