"""Spec mode with ``"distributed": {"world_size": N}``: the key's validation, the launch decision, and the
real thing (2 gloo ranks on the CPU, each running dldoctor's own DDP loop over the spec)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from dldoctor.core.errors import EntrypointError
from dldoctor.distributed import spec_loop
from dldoctor.loading.spec import validate_spec
from tests.distributed.test_ranks import _ranks_left, _report, _run

# -- validation -----------------------------------------------------------------------------------------


def _spec(**extra: object) -> dict:
    return {"model": nn.Linear(4, 2), "train_loader": [(torch.randn(8, 4), torch.randint(0, 2, (8,)))],
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": lambda p: torch.optim.SGD(p, lr=0.1), **extra}


@pytest.mark.parametrize("value", [
    {"world_size": 1}, {"world_size": 2}, {"world_size": 4, "backend": "gloo", "steps": 12},
    {"world_size": 2, "backend": "nccl"}, {"world_size": 2, "backend": None},
])
def test_distributed_key_accepted(value: dict) -> None:
    assert validate_spec(_spec(distributed=value)).distributed == value
    assert validate_spec(_spec()).distributed is None


@pytest.mark.parametrize(("value", "message"), [
    (2, "must be a dict"),
    ({}, "needs 'world_size'"),
    ({"backend": "gloo"}, "needs 'world_size'"),
    ({"world_size": 0}, "whole number >= 1, got 0"),
    ({"world_size": 2.0}, "whole number >= 1, got 2.0"),
    ({"world_size": True}, "whole number >= 1, got True"),
    ({"world_size": "2"}, "whole number >= 1, got '2'"),
    ({"world_size": 2, "backend": "mpi"}, "'backend' must be one of gloo, nccl, got 'mpi'"),
    ({"world_size": 2, "steps": 0}, "'steps'"),
    ({"world_size": 2, "steps": 1.5}, "'steps'"),
    ({"world_size": 2, "world": 2}, "unknown key 'world'"),
    ({"world_sise": 2}, "did you mean 'world_size'"),
])
def test_distributed_key_rejected(value: object, message: str) -> None:
    with pytest.raises(EntrypointError, match="spec key 'distributed'") as caught:
        validate_spec(_spec(distributed=value))
    assert message in caught.value.message
    assert '"distributed": {"world_size": 2' in caught.value.hint or "Its keys" in caught.value.hint


# -- the launch decision --------------------------------------------------------------------------------

SPEC = """\
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def dldoctor_spec():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 8, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    data = TensorDataset(X, y)
    if SAMPLER == "distributed":
        sampler = DistributedSampler(data, num_replicas=dist.get_world_size(), rank=dist.get_rank(),
                                     shuffle=True, seed=0)
        loader = DataLoader(data, batch_size=16, sampler=sampler)
    else:  # every rank shuffles the same way: the same batches on every rank
        loader = DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    return {
        "model": lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)),
        "train_loader": loader,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=0.1),
        "distributed": DISTRIBUTED,
    }
"""


def _write_spec(tmp_path: Path, name: str = "spec.py", sampler: str = "distributed",
                distributed: str = '{"world_size": 2, "steps": 12}') -> Path:
    path = tmp_path / name
    path.write_text(f"SAMPLER = {sampler!r}\nDISTRIBUTED = {distributed}\n" + textwrap.dedent(SPEC))
    return path


def test_mentions_distributed_reads_only_the_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("def dldoctor_spec():\n    raise AssertionError('not called')\n")
    assert not spec_loop.mentions_distributed(str(plain), None)
    assert not spec_loop.mentions_distributed(str(tmp_path / "missing.py"), None)
    assert not spec_loop.mentions_distributed(None, None)
    spec = _write_spec(tmp_path)
    assert spec_loop.mentions_distributed(str(spec), None)
    assert spec_loop.mentions_distributed(str(plain), f"{spec}:dldoctor_spec")
    assert not spec_loop.mentions_distributed(str(spec), f"{plain}:dldoctor_spec")
    assert spec_loop.mentions_distributed(None, "some.package:dldoctor_spec")  # found only by importing it


def test_read_launch_loads_a_spec_with_a_distributed_sampler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) \
        -> None:
    """The spec is called in the launching process under a one-rank group (its DistributedSampler reads
    the rank), which is gone afterwards; what it prints goes to stderr."""
    import torch.distributed as dist

    spec = _write_spec(tmp_path, distributed='print("hello") or {"world_size": 3, "steps": 12}')
    state = torch.random.get_rng_state()
    assert spec_loop.read_launch(str(spec), None, "cpu") == spec_loop.SpecLaunch(3, "gloo", 12)
    assert not dist.is_initialized()
    assert torch.equal(torch.random.get_rng_state(), state)
    out = capsys.readouterr()
    assert "hello" in out.err and "hello" not in out.out


@pytest.mark.parametrize(("distributed", "expected"), [
    ('{"world_size": 1}', None),
    ("None", None),
    ('{"world_size": 2, "backend": "gloo"}', spec_loop.SpecLaunch(2, "gloo", None)),
    ('{"world_size": 0}', None),  # an invalid spec: the diagnosis reports it, nothing is launched
])
def test_read_launch(tmp_path: Path, distributed: str, expected: spec_loop.SpecLaunch | None) -> None:
    spec = _write_spec(tmp_path, distributed=distributed)
    assert spec_loop.read_launch(str(spec), None, "cpu") == expected


def test_read_launch_refuses_nccl_without_a_gpu_per_rank(tmp_path: Path) -> None:
    from dldoctor.core.errors import UsageError

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    spec = _write_spec(tmp_path, distributed=f'{{"world_size": {max(gpus + 1, 2)}, "backend": "nccl"}}')
    with pytest.raises(UsageError, match="one GPU per rank"):
        spec_loop.read_launch(str(spec), None, "cpu")


def test_loop_args(tmp_path: Path) -> None:
    spec = tmp_path / "s.py"
    assert spec_loop.loop_args(str(spec), None, "gloo") == [str(spec.resolve()), "--backend", "gloo"]
    assert spec_loop.loop_args(None, "pkg.mod:make", "nccl") == ["--spec", "pkg.mod:make", "--backend", "nccl"]
    assert spec_loop.loop_args(str(spec), "other", "gloo")[1:3] == ["--spec", "other"]
    assert spec_loop.loop_args(None, f"{spec}:make", "gloo")[:2] == ["--spec", f"{spec.resolve()}:make"]


def test_rank_options_drop_target_spec_mode_and_script_args() -> None:
    from dldoctor.cli.run import _rank_options

    argv = ["run", "spec.py", "--format", "json", "-v", "--spec", "make", "--mode=spec", "--select", "a,b",
            "--seed", "-1", "--allow-incomplete", "-o", "r.json", "--", "x"]
    assert _rank_options(argv) == ["--format", "json", "-v", "--select", "a,b", "--seed", "-1",
                                   "--allow-incomplete", "-o", "r.json"]


def _invoke(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> tuple[list, list, int]:
    """``dldoctor ARGV`` in this process, with the launcher and the diagnosis replaced by recorders."""
    from typer.testing import CliRunner

    import dldoctor.cli.run as run_module
    import dldoctor.distributed.launch as launch_module
    from dldoctor.cli.app import app

    launched: list = []
    diagnosed: list = []
    monkeypatch.setattr(launch_module, "launch", lambda argv, nproc: launched.append((list(argv), nproc)) or 0)
    monkeypatch.setattr(run_module, "diagnose_and_report", lambda common, command: diagnosed.append(common))
    monkeypatch.setattr(sys, "argv", ["dldoctor", *argv])
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, argv)
    return launched, diagnosed, result.exit_code


def test_run_launches_the_ranks_a_spec_asks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _write_spec(tmp_path)
    launched, diagnosed, code = _invoke(monkeypatch, ["run", str(spec), "--format", "json", "--fail-on", "never"])
    assert code == 0 and not diagnosed
    assert launched == [(["run", "-m", "dldoctor.distributed.spec_loop", "--format", "json", "--fail-on", "never",
                          "--watch-steps", "12", "--", str(spec.resolve()), "--backend", "gloo"], 2)]
    # --watch-steps given wins over the spec's steps.
    launched, _, _ = _invoke(monkeypatch, ["run", str(spec), "--watch-steps=5"])
    assert launched[0][0][3:5] == ["--watch-steps=5", "--"]


@pytest.mark.parametrize("extra", [["--nproc-per-node", "1"], ["--mode", "script"]])
def test_nproc_per_node_or_script_mode_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]) \
        -> None:
    spec = _write_spec(tmp_path)
    launched, diagnosed, code = _invoke(monkeypatch, ["run", str(spec), *extra])
    assert code == 0 and not launched and len(diagnosed) == 1


def test_a_world_of_one_runs_plain_spec_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _write_spec(tmp_path, distributed='{"world_size": 1}')
    launched, diagnosed, code = _invoke(monkeypatch, ["run", str(spec)])
    assert code == 0 and not launched and len(diagnosed) == 1


def test_the_loop_refuses_to_run_outside_a_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit):
        spec_loop.main(["spec.py"])


@pytest.fixture
def one_rank_group():
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.usefixtures("one_rank_group")
def test_train_wraps_the_model_and_sets_the_sampler_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, seed=0)
    called: list[type] = []

    def forward(model: nn.Module, batch: tuple) -> tuple:
        called.append(type(model))
        return model(batch[0]), batch[1]

    spec = validate_spec(_spec(train_loader=DataLoader(data, batch_size=8, sampler=sampler), forward=forward,
                               model=lambda: nn.Linear(4, 2), grad_clip_norm=1.0))
    spec_loop.train(spec, torch.device("cpu"), epochs=3)
    assert called == [DistributedDataParallel] * 12 and sampler.epoch == 2
    wrapped = DistributedDataParallel(nn.Linear(4, 2))
    spec_loop.train(validate_spec(_spec(model=wrapped)), torch.device("cpu"), epochs=1)
    assert "already a DistributedDataParallel" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="yielded no batches"):
        spec_loop.train(validate_spec(_spec(train_loader=[])), torch.device("cpu"), epochs=1)


# -- end to end: 2 gloo ranks ---------------------------------------------------------------------------

SELECT = "ddp-duplicate-data,ddp-replicas-diverged"


@pytest.mark.slow
def test_spec_with_distributed_sampler_runs_two_ranks(tmp_path: Path) -> None:
    spec = _write_spec(tmp_path)
    proc = _run([sys.executable, "-m", "dldoctor", "run", str(spec), "--format", "json", "--select", SELECT,
                 "--fail-on", "never"], tmp_path)
    report = _report(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["target"] == str(spec)  # what the user named, not dldoctor's loop module
    ranks = report["reports"]["ranks"]
    assert ranks["world_size"] == 2
    per_rank = ranks["per_rank"]
    assert [r["steps"] for r in per_rank] == [12, 12]  # the spec's "steps"
    assert all(r["ddp"] and r["sampler"]["distributed"] for r in per_rank), per_rank
    assert [r["sampler"]["epochs"] for r in per_rank] == [[0, 1], [0, 1]]  # set_epoch called every epoch
    assert [d["id"] for d in report["diagnoses"] if d["id"].startswith("ddp-")] == []
    assert not _ranks_left(tmp_path)


@pytest.mark.slow
def test_spec_with_plain_loader_reads_the_same_data_on_every_rank(tmp_path: Path) -> None:
    spec = _write_spec(tmp_path, sampler="plain")
    proc = _run([sys.executable, "-m", "dldoctor", "run", str(spec), "--format", "json", "--select", SELECT,
                 "--fail-on", "never"], tmp_path)
    report = _report(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["reports"]["ranks"]["world_size"] == 2
    assert [d["id"] for d in report["diagnoses"] if d["id"].startswith("ddp-")] == ["ddp-duplicate-data"]
    assert not _ranks_left(tmp_path)
