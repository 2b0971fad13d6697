"""ddp-scaling-mismatch: the global batch and the lr at world size N against the same script run alone.

The judge is tested on fabricated records (rank 0's watched loop with every rank's record, and the
world-of-one run's numbers); the world-of-one run itself and the whole check through the CLI (2 gloo
ranks, the zoo case and a healthy script) in the slow tests.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dldoctor.api import Key, Store
from dldoctor.checks.distributed import scaling_mismatch as check_module
from dldoctor.checks.distributed.scaling_mismatch import (
    SCALING_REPORT,
    DdpScalingMismatchCheck,
    judge_scaling_mismatch,
    mismatch,
)
from dldoctor.distributed import world_of_one
from dldoctor.distributed.world_of_one import WorldOfOne, WorldOfOneFailed, run_world_of_one, single_env
from dldoctor.loading.script.record import OptimizerInfo, StepRecord, WatchedLoop

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "examples" / "distributed"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DLDOCTOR_GATHER_TIMEOUT_S": "60"}


# -- fabricated records ------------------------------------------------------------------------------------
def _step(i: int, lr: float, backwards: int = 1) -> StepRecord:
    return StepRecord(index=i, optimizer=0, backwards=backwards, fresh=True, grads_at_step=4, held=4, loss=1.0,
                      training=True, lr=(lr,), grad_norm=1.0)


def _loop(per_rank: int | list[int], lr: float | list[float], world: int = 2, backwards: int = 1,
          steps: int = 12, samples: tuple[int, ...] = ()) -> WatchedLoop:
    """Rank 0's watched loop of a run at ``world`` ranks: every rank called the model on ``per_rank``
    samples at its last step, ``backwards`` micro-batches per optimizer step, lr ``lr`` (or per step)."""
    lrs = lr if isinstance(lr, list) else [lr] * steps
    batches = per_rank if isinstance(per_rank, list) else [per_rank] * world
    loop = WatchedLoop(script="train.py", argv=["train.py", "--epochs", "3"], loader_line="train.py:40")
    loop.steps = [_step(i, lrs[min(i, len(lrs) - 1)], backwards) for i in range(steps)]
    loop.optimizers = [OptimizerInfo("SGD", "torch.optim.sgd", {"lr": lrs[0]}, [{"lr": lrs[0]}], 4, steps)]
    loop.ranks = [{"rank": r, "world_size": world, "per_rank_batch": batches[r], "steps": steps,
                   "lr": [[lrs[0]], [lrs[-1]]]} for r in range(world)]
    if samples:
        loop.resources = _Resources(samples)
    return loop


class _Resources:
    def __init__(self, samples: tuple[int, ...]) -> None:
        self.samples = samples


def _alone(batch: int, lr: float | list[float], backwards: int = 1) -> WorldOfOne:
    lrs = lr if isinstance(lr, list) else [lr, lr]
    return WorldOfOne(per_rank_batch=batch, backwards=backwards, lr=tuple((x,) for x in lrs), steps=2,
                      optimizer="SGD")


# -- the judge ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,r,case", [
    (2.0, 1.0, "batch"), (2.0, 1.09, "batch"), (0.5, 1.0, "batch"), (1.5, 0.95, "batch"),
    (1.0, 2.0, "lr"), (1.05, 0.5, "lr"), (1.0, 1.5, "lr"),
    (2.0, 2.0, ""), (2.0, math.sqrt(2), ""), (2.0, 1.2, ""), (4.0, 2.0, ""),  # the user scaled the lr
    (1.0, 1.0, ""), (1.0, 1.3, ""), (1.3, 1.0, ""),  # neither changed enough
    (2.0, 1.15, ""),  # between "the same" and "scaled": not called either way
])
def test_mismatch_thresholds(k: float, r: float, case: str) -> None:
    assert mismatch(k, r) == case


def test_the_recipe_moved_unchanged_is_flagged_with_its_numbers() -> None:
    """The zoo case: batch 64 and lr 0.1 alone; under 2 ranks 64 per rank (global 128), lr 0.1."""
    verdict = judge_scaling_mismatch(_loop(64, 0.1), _alone(64, 0.1))
    assert verdict is not None
    assert verdict.diagnosis_id == "ddp-scaling-mismatch" and verdict.severity.value == "warning"
    assert verdict.case == "batch"
    m = verdict.metrics
    assert m["k"] == pytest.approx(2.0) and m["r"] == pytest.approx(1.0)
    assert (m["global_batch_world_1"], m["global_batch"], m["per_rank_batch"], m["world_size"]) == (64, 128, 64, 2)
    assert m["lr_world_1"] == m["lr"] == pytest.approx(0.1)
    text = " ".join(verdict.evidence)
    assert "64 samples per step" in text and "global batch of 128" in text and "lr 0.1" in text
    assert "arXiv:1706.02677" in text and "not measured here" in text and "measured: dldoctor ran" in text
    assert verdict.fixes is not None
    assert verdict.fixes[0].startswith("Keep the global batch") and "64 // 2 = 32" in verdict.fixes[0]
    assert "0.2" in verdict.fixes[1]  # lr x 2, linear
    assert verdict.location == "train.py:40"


def test_a_kept_global_batch_with_the_same_lr_is_silent() -> None:
    """The healthy scripts: per-rank batch = global // world, lr unchanged."""
    assert judge_scaling_mismatch(_loop(32, 0.05), _alone(64, 0.05)) is None
    assert judge_scaling_mismatch(_loop(16, 0.05, world=4), _alone(64, 0.05)) is None


@pytest.mark.parametrize("lr", [0.2, 0.1 * math.sqrt(2), 0.15])
def test_a_grown_batch_with_a_scaled_lr_is_silent(lr: float) -> None:
    """Linear (x2), square-root (x1.41) or any raise of at least 1.2x: the user scaled the lr."""
    assert judge_scaling_mismatch(_loop(64, lr), _alone(64, 0.1)) is None


def test_an_lr_scaled_for_a_batch_that_did_not_grow_is_flagged() -> None:
    verdict = judge_scaling_mismatch(_loop(32, 0.2), _alone(64, 0.1))
    assert verdict is not None and verdict.case == "lr"
    assert verdict.metrics["k"] == pytest.approx(1.0) and verdict.metrics["r"] == pytest.approx(2.0)
    assert "learning rate changed 2x" in verdict.title
    assert verdict.fixes is not None and verdict.fixes[0].startswith("Keep the lr tuned at world size 1 (0.1)")


def test_adam_gets_square_root_scaling_first() -> None:
    loop = _loop(64, 1e-3, world=4)
    loop.optimizers[0] = OptimizerInfo("AdamW", "torch.optim.adamw", {"lr": 1e-3}, [{"lr": 1e-3}], 4, 12)
    verdict = judge_scaling_mismatch(loop, _alone(64, 1e-3))
    assert verdict is not None and verdict.metrics["k"] == pytest.approx(4.0)
    assert verdict.fixes is not None and "sqrt(4) = 0.002" in verdict.fixes[1]


def test_accumulation_counts_micro_batches() -> None:
    """Samples per optimizer step = micro-batch x backward() calls per step, at both world sizes."""
    # The healthy no_sync script: 32 x 4 alone, 16 x 4 per rank on 2 ranks: the global batch is kept.
    assert judge_scaling_mismatch(_loop(16, 0.1, backwards=4), _alone(32, 0.1, backwards=4)) is None
    # The micro-batch kept and the accumulation halved with 2 ranks: kept too.
    assert judge_scaling_mismatch(_loop(16, 0.1, backwards=4), _alone(16, 0.1, backwards=8)) is None
    # The same accumulation at both world sizes and the same micro-batch: the global batch doubled.
    verdict = judge_scaling_mismatch(_loop(16, 0.1, backwards=4), _alone(16, 0.1, backwards=4))
    assert verdict is not None and verdict.metrics["global_batch"] == 128 and verdict.metrics["k"] == 2.0
    assert "16 x 4 accumulated micro-batches" in verdict.evidence[0]


def test_a_short_last_batch_is_not_the_batch() -> None:
    """The ranks' records hold the last step's batch, which may end an epoch short: rank 0's usual batch
    (its monitored steps) stands for it."""
    loop = _loop(8, 0.05, samples=(32,) * 11 + (8,))
    assert judge_scaling_mismatch(loop, _alone(64, 0.05)) is None
    assert judge_scaling_mismatch(_loop(8, 0.05), _alone(64, 0.05)) is not None  # without them: 8 per rank


def test_a_warm_up_from_zero_compares_the_next_step() -> None:
    loop = _loop(64, [0.0, 0.05, 0.1])
    assert judge_scaling_mismatch(loop, _alone(64, [0.0, 0.05])) is not None  # 0.05 = 0.05: not scaled
    assert judge_scaling_mismatch(loop, _alone(64, [0.0, 0.025])) is None  # scaled x2
    assert judge_scaling_mismatch(_loop(64, 0.0), _alone(64, 0.0)) is None  # no lr to compare


def test_not_judged_without_every_rank() -> None:
    loop = _loop(64, 0.1)
    loop.ranks[1] = {"rank": 1, "missing": "no record within 60 s"}
    assert judge_scaling_mismatch(loop, _alone(64, 0.1)) is None
    single = _loop(64, 0.1)
    single.ranks = []
    assert judge_scaling_mismatch(single, _alone(64, 0.1)) is None


# -- the check, its world-of-one run replaced ---------------------------------------------------------------
class _Ctx:
    def __init__(self, loop: WatchedLoop) -> None:
        self.watched = loop
        self.reports = Store()

    def time_left(self) -> float:
        return 100.0


def test_the_check_runs_nothing_when_not_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> WorldOfOne:
        raise AssertionError("no world-of-one run when the run is not distributed")

    monkeypatch.setattr(world_of_one, "run_world_of_one", never)
    loop = _loop(64, 0.1)
    loop.ranks = []
    ctx = _Ctx(loop)
    assert DdpScalingMismatchCheck().run(ctx) == []
    assert SCALING_REPORT not in ctx.reports and not loop.notes


def test_the_check_says_why_it_could_not_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "at world size 1, train.py raised AssertionError: needs 2 ranks before its first optimizer step"

    def failing(*args: Any, **kwargs: Any) -> WorldOfOne:
        raise WorldOfOneFailed(reason)

    monkeypatch.setattr(world_of_one, "run_world_of_one", failing)
    loop = _loop(64, 0.1)
    ctx = _Ctx(loop)
    assert DdpScalingMismatchCheck().run(ctx) == []
    assert ctx.reports[SCALING_REPORT] == {"judged": False, "reason": reason}
    assert loop.notes == [f"ddp-scaling-mismatch not judged: {reason}"]


def test_the_check_runs_the_script_as_the_user_named_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake(target: str, args: list[str], module: bool, **kwargs: Any) -> WorldOfOne:
        calls.append((target, list(args), module, kwargs["timeout_s"]))
        return _alone(64, 0.1)

    monkeypatch.setattr(world_of_one, "run_world_of_one", fake)
    loop = _loop(64, 0.1)
    loop.script, loop.argv = "-m pkg.train", ["pkg.train", "--lr", "0.1"]
    findings = DdpScalingMismatchCheck().run(_Ctx(loop))
    assert [f.id for f in findings] == ["ddp-scaling-mismatch"]
    assert calls == [("pkg.train", ["--lr", "0.1"], True, pytest.approx(100.0 - check_module.MARGIN_S))]


def test_report_key_is_a_key() -> None:
    assert isinstance(SCALING_REPORT, Key) and SCALING_REPORT.name == "ddp_scaling"


# -- the world-of-one run ----------------------------------------------------------------------------------
def test_the_group_of_one_environment() -> None:
    env = single_env({"PATH": "/bin", "RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "True",
                      "TORCHELASTIC_RUN_ID": "abc", "DLDOCTOR_RANK0_EXIT_FILE": "/tmp/x", "MASTER_PORT": "29500"},
                     port=12345)
    assert env["PATH"] == "/bin"
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], env["GROUP_RANK"]) == \
        ("0", "0", "1", "1", "0")
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", "12345")
    assert "TORCHELASTIC_USE_AGENT_STORE" not in env and "DLDOCTOR_RANK0_EXIT_FILE" not in env
    assert env["TORCHELASTIC_RUN_ID"] not in ("abc", "")  # a run of its own
    assert world_of_one.command("pkg.train", ["--x"], module=True)[-4:] == [
        "dldoctor.distributed.world_of_one", "-m", "pkg.train", "--x"]


def test_the_result_is_the_last_json_line() -> None:
    assert world_of_one._parse('noise\n{"per_rank_batch": 8}\n') == {"per_rank_batch": 8}
    assert world_of_one._parse("{not json\nplain\n") is None
    single = WorldOfOne.from_dict({"per_rank_batch": 8, "backwards": 2, "lr": [[0.1, 0.01]], "steps": 1})
    assert single.samples_per_step == 16 and single.lr == ((0.1, 0.01),)
    assert WorldOfOne.from_dict(single.to_dict()) == single


TINY = """\
import os, sys
import torch
import torch.distributed as dist
from torch import nn
dist.init_process_group("gloo")
assert dist.get_world_size() == int(os.environ.get("NEED_WORLD", "1")), "this script needs 2 ranks"
print("hello from the script")  # on stderr: the result line stays parseable
model = nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.3)
loss_fn = nn.MSELoss()
for step in range(50):
    for micro in range(3):
        loss = loss_fn(model(torch.randn(5, 4)), torch.zeros(5, 2))
        loss.backward()
    opt.step()
    opt.zero_grad()
dist.destroy_process_group()
"""


def _left(folder: Path) -> list[str]:
    """Processes still running with this folder in their command line (none may be left behind)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], check=False, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(folder) in line]


@pytest.mark.slow
def test_world_of_one_measures_fails_with_a_reason_and_times_out(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    single = run_world_of_one(str(script), cwd=tmp_path)
    assert (single.per_rank_batch, single.backwards, single.steps) == (5, 3, 2)
    assert single.lr == ((0.3,), (0.3,)) and single.optimizer == "SGD"
    monkeypatch.setenv("NEED_WORLD", "2")
    with pytest.raises(WorldOfOneFailed, match=r"at world size 1, .*AssertionError: this script needs 2 ranks"):
        run_world_of_one(str(script), cwd=tmp_path)
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\ntime.sleep(600)\n")
    with pytest.raises(WorldOfOneFailed, match=r"did not reach 2 optimizer steps at world size 1 within 3 s"):
        run_world_of_one(str(sleeper), cwd=tmp_path, timeout_s=3)
    assert not _left(tmp_path)
