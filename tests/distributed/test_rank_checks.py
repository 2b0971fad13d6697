"""The ddp checks that read the ranks' step probes, timings and the hang watchdog: their verdicts on
fabricated records (each case one of the situations the judge tells apart), and the probes themselves on
a real model."""

from __future__ import annotations

import contextlib
import traceback

import pytest
import torch
from torch import nn

from dldoctor.checks.distributed.gradients_not_averaged import classify, judge_gradients_not_averaged
from dldoctor.checks.distributed.hang import judge_hang as judge_hang_finding
from dldoctor.checks.distributed.straggler import judge_straggler
from dldoctor.checks.distributed.unsynced_batchnorm import judge_unsynced_batchnorm
from dldoctor.distributed.step_probes import GradientProbe, NormProbe
from dldoctor.distributed.watchdog import _torch_root, judge_hang, where_waiting
from dldoctor.loading.script.record import WatchedLoop


def _loop(*ranks: dict, hang: dict | None = None) -> WatchedLoop:
    loop = WatchedLoop(script="t.py", argv=["t.py"])
    loop.ranks = list(ranks)
    loop.hang = hang
    return loop


# -- gradients ---------------------------------------------------------------------------------------------

def _grads(rank: int, local: list[float], stepped: list[float], **extra) -> dict:
    return {"rank": rank, "gradients": [{"step": 1, "tensors": list(range(len(local))), "local": local,
                                         "stepped": stepped, "backwards": 1}], "loss_scale": 1.0,
            "backwards": [0, 1, 1], **extra}


A, B = [0.3, 0.08, -0.6, 0.1], [0.1, -0.02, 0.2, -0.3]
MEAN = [(a + b) / 2 for a, b in zip(A, B)]
SUM = [a + b for a, b in zip(A, B)]


def test_averaged_gradients_pass() -> None:
    assert classify([_grads(0, A, MEAN)["gradients"][0], _grads(1, B, MEAN)["gradients"][0]])[0] == "averaged"
    assert judge_gradients_not_averaged(_loop(_grads(0, A, MEAN), _grads(1, B, MEAN))) is None


def test_summed_gradients_are_named_with_their_multiple() -> None:
    verdict = judge_gradients_not_averaged(_loop(_grads(0, A, SUM), _grads(1, B, SUM)))
    assert verdict is not None and verdict.diagnosis_id == "ddp-gradients-not-averaged"
    assert verdict.case == "summed" and abs(verdict.metrics["multiple"] - 2) < 1e-9
    assert "their sum" in verdict.title


def test_summed_gradients_of_a_loss_divided_by_the_world_size_pass() -> None:
    """loss / world_size, then all_reduce(SUM): the average of the unscaled losses' gradients, as meant."""
    ranks = [_grads(0, A, SUM, loss_scale=0.5), _grads(1, B, SUM, loss_scale=0.5)]
    assert judge_gradients_not_averaged(_loop(*ranks)) is None
    # The same scale for 2 accumulated backward passes is the accumulation's, not the world size's.
    ranks = [_grads(0, A, SUM, loss_scale=0.5, backwards=[0, 2, 2]),
             _grads(1, B, SUM, loss_scale=0.5, backwards=[0, 2, 2])]
    assert judge_gradients_not_averaged(_loop(*ranks)) is not None


def test_unreduced_gradients_are_named() -> None:
    verdict = judge_gradients_not_averaged(_loop(_grads(0, A, A), _grads(1, B, B)))
    assert verdict is not None and verdict.case == "not reduced"


def test_clipped_or_unscaled_gradients_pass() -> None:
    """A multiple below 1 (clipping, a GradScaler's unscaling) is not a sum; another direction is not judged."""
    clipped = [0.4 * x for x in MEAN]
    assert judge_gradients_not_averaged(_loop(_grads(0, A, clipped), _grads(1, B, clipped))) is None
    stale = [m + 0.5 for m in MEAN]
    assert judge_gradients_not_averaged(_loop(_grads(0, A, stale), _grads(1, B, stale))) is None
    assert judge_gradients_not_averaged(_loop(_grads(0, A, SUM), {"rank": 1, "missing": "no record"})) is None


def test_gradient_probe_sees_local_and_stepped_gradients() -> None:
    """The probe's projections are linear: scaling .grad between backward and step scales 'stepped' only."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    probe = GradientProbe()
    probe.arm(model.parameters())
    model(torch.randn(8, 6)).pow(2).mean().backward()
    for p in model.parameters():
        p.grad.mul_(2.0)  # what a summing all_reduce over two equal ranks does
    probe.read(1)
    reading = probe.readings[0]
    assert reading["backwards"] == 1 and reading["tensors"] == [0, 1]
    for local, stepped in zip(reading["local"], reading["stepped"]):
        assert abs(stepped - 2 * local) <= 1e-5 * max(1.0, abs(local))
    model(torch.randn(8, 6)).sum().backward()  # the hooks are gone after the read: nothing more is seen
    assert len(probe.readings) == 1 and not probe._handles


# -- batch norm --------------------------------------------------------------------------------------------

def _norms(rank: int, offset: float, batch: int = 4) -> dict:
    layer = {"layer": "1", "class": "BatchNorm2d", "batch": batch, "offset": offset, "mean": [0.1, 0.4],
             "var": [1.0, 1.0]}
    return {"rank": rank, "norm_stats": [{"step": 1, "layers": [layer]}]}


def test_own_statistics_on_small_per_rank_batches_are_named() -> None:
    verdict = judge_unsynced_batchnorm(_loop(_norms(0, 1e-7), _norms(1, 2e-7)))
    assert verdict is not None and verdict.diagnosis_id == "ddp-unsynced-batchnorm"
    assert verdict.metrics["per_rank_batch"] == 4 and verdict.metrics["global_batch"] == 8


def test_synchronised_statistics_or_large_batches_pass() -> None:
    assert judge_unsynced_batchnorm(_loop(_norms(0, 0.1), _norms(1, 0.1))) is None  # statistics over the ranks
    assert judge_unsynced_batchnorm(_loop(_norms(0, 1e-7, batch=32), _norms(1, 1e-7, batch=32))) is None


def test_norm_probe_tells_own_statistics_from_others() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    own = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    own[1].bias.data.fill_(0.7)
    probe = NormProbe()
    probe.arm(own)
    own(x)
    probe.read(1)
    assert probe.readings[0]["layers"][0]["offset"] < 1e-5

    class OtherStatistics(nn.BatchNorm2d):
        """Normalises with fixed statistics of a larger batch (what a synchronised layer does)."""

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            return (inp - 0.5) / 3.0 * self.weight[None, :, None, None] + self.bias[None, :, None, None]

    other = nn.Sequential(OtherStatistics(3))
    probe = NormProbe()
    probe.arm(other)
    other(x)
    probe.read(1)
    assert probe.readings[0]["layers"][0]["offset"] > 1e-2


# -- straggler ---------------------------------------------------------------------------------------------

def _times(rank: int, wait: float, forward: float = 0.001, step: float = 0.11) -> dict:
    return {"rank": rank, "step_s": step, "wait_s": wait, "forward_s": forward, "steps": 30}


def test_a_rank_waiting_for_data_is_a_straggler() -> None:
    verdict = judge_straggler(_loop(_times(0, 0.0003), _times(1, 0.1)))
    assert verdict is not None and verdict.metrics["rank"] == 1 and verdict.case == "wait_s"


def test_scheduler_noise_is_not_a_straggler() -> None:
    # 13 ms against 1 ms on a 49 ms step: seen when 16 processes shared 2 cores.
    assert judge_straggler(_loop(_times(0, 0.001, step=0.049), _times(1, 0.0136, step=0.049))) is None
    assert judge_straggler(_loop(_times(0, 0.02, step=0.1), _times(1, 0.05, step=0.1))) is None  # 2.5x only


# -- hang --------------------------------------------------------------------------------------------------

def _state(rank: int, waiting: str = "", line: str = "", ended: bool = False) -> dict:
    return {"rank": rank, "waiting": waiting, "collective": waiting, "line": line, "ended": ended, "still_s": 21.0,
            "stack": [f"t.py:{rank} in main"]}


def test_ranks_waiting_at_different_collectives_hang() -> None:
    states = [_state(0, "barrier", "t.py:55 (main)"), _state(1, "backward", "t.py:48 (main)")]
    verdict = judge_hang(states)
    assert verdict is not None and verdict["waiting_s"] == 21.0
    finding = judge_hang_finding(_loop({"rank": 0, "steps": 12}, {"rank": 1, "steps": 12}, hang=verdict))
    assert finding is not None and finding.diagnosis_id == "ddp-hang" and finding.location == "t.py:55"
    assert "barrier() at t.py:55" in finding.title and "t.py:48" in finding.title


def test_a_rank_waiting_for_one_that_ended_hangs() -> None:
    assert judge_hang([_state(0, ended=True), _state(1, "all_reduce", "t.py:9 (main)")]) is not None


def test_waiting_together_or_working_is_not_a_hang() -> None:
    same = [_state(0, "all_reduce", "t.py:9 (main)"), _state(1, "all_reduce", "t.py:9 (main)")]
    assert judge_hang(same) is None  # waiting for each other to finish one call
    assert judge_hang([_state(0, "barrier", "t.py:5 (main)"), _state(1)]) is None  # rank 1 still works
    assert judge_hang([_state(0, ended=True), _state(1, ended=True)]) is None


def test_where_waiting_reads_torch_frames() -> None:
    import torch.distributed.distributed_c10d as c10d

    root = _torch_root()
    barrier = traceback.FrameSummary(c10d.__file__, 10, "barrier")
    user = traceback.FrameSummary("/home/u/train.py", 55, "main")
    assert where_waiting([user, barrier], root) == "barrier"
    assert where_waiting([user], root) == ""
    backward = traceback.FrameSummary(torch.autograd.__file__, 3, "backward")
    assert where_waiting([user, backward], root) == "backward"


# -- the world-of-one measurement, taken by the last rank ---------------------------------------------------

class _Store:
    """The part of a c10d store the exchange uses, in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def set(self, key: str, value: bytes) -> None:
        self.values[key] = value

    def get(self, key: str) -> bytes:
        return self.values[key]

    def check(self, keys: list[str]) -> bool:
        return all(k in self.values for k in keys)


def test_world_of_one_is_measured_by_the_last_rank_and_read_by_rank_zero(monkeypatch) -> None:
    from dldoctor.distributed import RankEnv, world_of_one
    from dldoctor.distributed.exchange import Exchange

    store = _Store()
    last, leader = Exchange(RankEnv(1, 2, 1), store), Exchange(RankEnv(0, 2, 0), store)
    assert world_of_one.collected(0.2, leader) is None  # nothing published (yet): rank 0 measures itself
    measured = world_of_one.WorldOfOne(per_rank_batch=64, backwards=1, lr=((0.1,), (0.1,)), steps=2)
    monkeypatch.setattr(world_of_one, "run_world_of_one", lambda *a, **k: measured)
    world_of_one.publish(leader, "t.py")  # rank 0 does not measure it in the others' place
    assert world_of_one.collected(0.2, leader) is None
    world_of_one.publish(last, "t.py")
    assert world_of_one.collected(5, leader) == measured

    def fails(*a, **k):
        raise world_of_one.WorldOfOneFailed("at world size 1, the script asserts world_size == 2")

    monkeypatch.setattr(world_of_one, "run_world_of_one", fails)
    world_of_one.publish(last, "t.py")
    with pytest.raises(world_of_one.WorldOfOneFailed, match="asserts world_size"):
        world_of_one.collected(5, leader)


def test_rank_zero_does_not_wait_for_a_last_rank_that_left() -> None:
    import time

    from dldoctor.distributed import RankEnv, world_of_one
    from dldoctor.distributed.exchange import Exchange

    store = _Store()
    Exchange(RankEnv(1, 2, 1), store).leave()
    started = time.monotonic()
    assert world_of_one.collected(30, Exchange(RankEnv(0, 2, 0), store)) is None
    assert time.monotonic() - started < 5


def test_fingerprints_read_every_sampled_row_not_one_border() -> None:
    """Images alike in their first rows (a uniform border) but not elsewhere have different fingerprints."""
    from dldoctor.distributed.rank_record import batch_head, fingerprint

    plain = torch.zeros(8, 3, 64, 64)
    marked = plain.clone()
    marked[3, :, 40:, 40:] = 1.0  # the fourth sample, far from the first values
    assert fingerprint((plain,)) != fingerprint((marked,))
    assert fingerprint((plain,)) == fingerprint((plain.clone(),))
    # A host tensor is hashed at the step; one numpy cannot read (here: one that requires grad) is copied
    # and hashed later, and the two give the same hash for the same values.
    assert isinstance(batch_head((marked,)), str)
    head = batch_head((marked.clone().requires_grad_(),))
    assert isinstance(head, tuple) and head[0].numel() <= 4096
    assert fingerprint((marked.clone().requires_grad_(),)) == fingerprint((marked,))
    view = marked[:, 0].transpose(1, 2)  # a strided view: the same values in the same order either way
    assert fingerprint((view,)) == fingerprint((view.contiguous().requires_grad_(),))
    # A small contiguous batch (its first samples hold under 4096 values) is hashed from its bytes as they lie.
    small = torch.arange(32 * 64, dtype=torch.float32).view(32, 1, 8, 8)
    assert fingerprint((small,)) == fingerprint((small.clone().requires_grad_(),))
    assert fingerprint((small,)) != fingerprint((small.flip(0).contiguous(),))
    assert fingerprint((small[::2],)) == fingerprint((small[::2].contiguous().requires_grad_(),))
    assert fingerprint((small[0, 0, 0, 0],)) == fingerprint((small[0, 0, 0, 0].clone().requires_grad_(),))


# -- what the other ranks record --------------------------------------------------------------------------

def _watched_loop(follower: bool):
    from dldoctor.distributed import RankEnv
    from dldoctor.distributed.rank_record import RankProbe
    from dldoctor.loading.script.watch import Budget, Watcher
    from dldoctor.probes.resources.monitor import StepMonitor

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(96, 6), torch.randint(0, 3, (96,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher = Watcher(WatchedLoop(script="t.py", argv=["t.py"]), Budget(min_steps=12, max_steps=12), (),
                      step_monitor=lambda device: StepMonitor(device, read_memory=not follower))
    watcher.follower = follower
    watcher.rank_probe = RankProbe(RankEnv(1 if follower else 0, 2, 1 if follower else 0))
    from dldoctor.loading.script.watch import StopScript

    with watcher:
        try:
            for _ in range(3):
                for x, y in loader:
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
        except StopScript:
            pass
    return watcher, watcher.rank_probe.record(watcher)


def test_other_ranks_record_what_the_rank_checks_read_and_no_more() -> None:
    """A follower rank keeps its losses, learning rates, step times, batch size and fingerprints (what the
    ddp checks compare) but reads no gradient norms, keeps no batches and reads no memory: only rank 0's own
    checks use those."""
    leader, leader_record = _watched_loop(follower=False)
    follower, record = _watched_loop(follower=True)
    assert len(follower.record.steps) == len(leader.record.steps) == 12
    assert all(s.loss is not None for s in follower.record.steps)
    assert [s.loss for s in follower.record.steps] == [s.loss for s in leader.record.steps]
    assert all(s.grad_norm is None for s in follower.record.steps)
    from dldoctor.loading.script.watch import GRAD_EVERY, RANK_DENSE_GRAD_STEPS

    read = [s.index for s in leader.record.steps if s.grad_norm is not None]
    assert read == [i for i in range(12) if i < RANK_DENSE_GRAD_STEPS or i % GRAD_EVERY == 0]
    assert follower.kept == [] and leader.kept
    assert follower.record.resources.memory == () and leader.record.resources.memory
    assert len(follower.record.resources.compute_s) == len(leader.record.resources.compute_s) > 0
    for key in ("losses", "fingerprints", "per_rank_batch", "lr", "checksums", "sampler", "backwards"):
        assert record[key] == leader_record[key], key
    assert record["step_s"] is not None and record["per_rank_batch"] == 16


def _watch_rank(train, steps: int):
    """``train()`` run as rank 0 of 2 under a watcher and its rank probe for ``steps`` optimizer steps."""
    from dldoctor.distributed import RankEnv
    from dldoctor.distributed.rank_record import RankProbe
    from dldoctor.loading.script.watch import Budget, StopScript, Watcher

    watcher = Watcher(WatchedLoop(script="t.py", argv=["t.py"]), Budget(min_steps=steps, max_steps=steps), ())
    watcher.rank_probe = RankProbe(RankEnv(0, 2, 0))
    with watcher, contextlib.suppress(StopScript):
        train()
    return watcher, watcher.rank_probe.record(watcher)


def test_fingerprints_are_taken_at_the_same_positions_of_every_epoch() -> None:
    """Batches are hashed at the first steps of each epoch and every fourth after them, so a repeated order is
    still compared position by position: an unshuffled loader's second epoch repeats the first at each hashed
    position, a reshuffling one at none."""
    from dldoctor.checks.distributed.same_order import repeated_order
    from dldoctor.distributed.rank_record import FINGERPRINT_DENSE, FINGERPRINT_EVERY

    def loop(shuffle: bool):
        torch.manual_seed(0)
        data = torch.utils.data.TensorDataset(torch.randn(192, 6), torch.randint(0, 3, (192,)))
        loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=shuffle)  # 12 steps an epoch
        model = nn.Linear(6, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def train() -> None:
            for _ in range(3):
                for x, y in loader:
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
        return _watch_rank(train, 24)[1]

    same = loop(shuffle=False)
    taken = [i for i in range(12) if i < FINGERPRINT_DENSE or i % FINGERPRINT_EVERY == 0]
    assert same["epoch_starts"][0] == 12
    assert [i for i, f in enumerate(same["fingerprints"]) if f is not None] == taken + [12 + i for i in taken]
    assert repeated_order(same) == (len(taken), len(taken))
    assert repeated_order(loop(shuffle=True)) == (0, len(taken))


def test_rank_zero_reads_gradient_norms_sparsely_but_misses_no_late_gradient() -> None:
    """In a rank, gradient norms are read at the first steps and every fourth after them; a parameter whose
    first gradient comes at a step in between is read at that step, so ``never_grad`` stays exact."""
    from dldoctor.loading.script.watch import GRAD_EVERY, RANK_DENSE_GRAD_STEPS

    late = RANK_DENSE_GRAD_STEPS + 2  # neither dense nor a multiple of GRAD_EVERY
    assert late % GRAD_EVERY
    torch.manual_seed(0)
    trunk, head = nn.Linear(6, 3), nn.Linear(6, 3)
    optimizer = torch.optim.SGD([*trunk.parameters(), *head.parameters()], lr=0.1)
    model = nn.ModuleDict({"trunk": trunk, "head": head})
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts, self.calls = model, 0

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            out = self.parts["trunk"](inputs)
            return out + self.parts["head"](inputs) if self.calls > late else out

    net = Net()

    def train() -> None:
        while True:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

    watcher, _ = _watch_rank(train, 16)
    read = [s.index for s in watcher.record.steps if s.grad_norm is not None]
    assert late in read and late + 1 not in read
    assert read == sorted({*range(RANK_DENSE_GRAD_STEPS), *range(0, 16, GRAD_EVERY), late})
    assert watcher.record.never_grad == []


def test_fingerprint_copies_held_until_the_record_are_not_the_loops_memory() -> None:
    """Fingerprint heads that wait on their device until the record (here: inputs that require grad take that
    path on the CPU too) hold 16 kB a step for 32x32 images: dldoctor's memory, taken out of the loop's series,
    which stays flat for a healthy loop instead of reading as a leak of the loop."""
    from dldoctor.core.config import load_config
    from dldoctor.distributed import RankEnv
    from dldoctor.distributed.rank_record import RankProbe
    from dldoctor.loading.script.watch import Budget, StopScript, Watcher
    from dldoctor.probes.resources.monitor import StepMonitor
    from dldoctor.readings.leaks import detect

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 3, 32, 32), torch.randint(0, 4, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)  # 4 steps an epoch: every step's batch is hashed
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    watcher = Watcher(WatchedLoop(script="t.py", argv=["t.py"]), Budget(min_steps=48, max_steps=48), (),
                      step_monitor=StepMonitor)
    watcher.rank_probe = RankProbe(RankEnv(0, 2, 0))
    with watcher:
        try:
            while True:
                for x, y in loader:
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x.requires_grad_()), y).backward()
                    optimizer.step()
        except StopScript:
            pass
    probe, resources = watcher.rank_probe, watcher.record.resources
    assert all(isinstance(h, tuple) for h in probe.heads) and probe.held_bytes == 48 * 4096 * 4
    cfg = load_config().section("memory_leak")
    assert detect(resources.memory, cfg, resources.own_bytes_per_step, resources.memory_steps) is None
    held = [4096 * 4 * (step + 1) for step in resources.memory_steps]  # what the series held before this fix
    raw = [m + h for m, h in zip(resources.memory, held)]
    assert detect(raw, cfg, resources.own_bytes_per_step, resources.memory_steps) is not None
