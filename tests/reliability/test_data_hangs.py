"""Data that hangs or fails: one guarded reader, one deadline per run, the index and the line named."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from dldoctor.core.config import Config, load_config, merge
from dldoctor.core.context import Context, restored_generators
from dldoctor.core.errors import CheckIncomplete, EntrypointError, ExitCode
from dldoctor.core.runner import RunOptions, diagnose
from dldoctor.core.severity import FailOn
from dldoctor.core.stage import Stage
from dldoctor.loading.entrypoint import load_target
from dldoctor.loading.reader import GuardedReader, progress
from dldoctor.runtime.rng import isolated_rng
from tests.conftest import run_cli

# Wall-clock deadlines measured: run alone (make test's serial phase), not on a machine other tests load.
pytestmark = pytest.mark.serial

#: The deadline of the in-process runs (run.batch_deadline_s): short, so the tests are.
DEADLINE = 1.5

DATASET = """\
import time
from torch.utils.data import Dataset

class Records(Dataset):
    def __init__(self, n=256, stuck=None, bad=None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.stuck, self.bad = stuck, bad

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        if self.stuck is not None and self.stuck(index):
            time.sleep(3600)  # WAITS HERE
        if self.bad is not None and self.bad(index):
            raise ValueError(f"corrupt record {{index}}")  # RAISES HERE
        return self.x[index], self.y[index]

def dldoctor_spec():
    return {{
        "model": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)),
        "train_loader": DataLoader(Records({records}), batch_size=32{loader}),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),
    }}
"""


@pytest.fixture(autouse=True)
def _stop_stuck_workers():
    """A hang test leaves DataLoader worker processes asleep in ``__getitem__``: stop them,
    so that the next tests of the process do not run beside them (nor wait on their
    shutdown when the garbage collector releases an iterator that still holds them)."""
    before = set(multiprocessing.active_children())
    yield
    for child in set(multiprocessing.active_children()) - before:
        child.terminate()
        child.join(timeout=5)


def project(make_project, records: str, loader: str = ""):
    path = make_project(DATASET.format(records=records, loader=loader))
    lines = path.read_text().splitlines()
    waits = next(i for i, line in enumerate(lines, 1) if "# WAITS HERE" in line)
    raises = next(i for i, line in enumerate(lines, 1) if "# RAISES HERE" in line)
    return path, waits, raises


def run(path, stages=(Stage.RUN, Stage.OVERFIT, Stage.DATA), deadline=DEADLINE):
    return diagnose(RunOptions(target=str(path), device="cpu", stages=stages,
                               overrides=(("run.batch_deadline_s", deadline),)))


def hang_findings(diagnosis):
    return [f for f in diagnosis.diagnoses if f.id == "check-incomplete" and f.metrics.get("user_code")]


@pytest.mark.parametrize("workers", [0, 2], ids=["num_workers=0", "num_workers=2"])
def test_a_getitem_that_blocks_from_some_index_on_costs_one_deadline_and_is_named(make_project, workers):
    loader = f", num_workers={workers}" if workers else ""
    path, waits, _ = project(make_project, "stuck=lambda i: i >= 100", loader)
    started = time.perf_counter()
    diagnosis = run(path)
    elapsed = time.perf_counter() - started

    hangs = hang_findings(diagnosis)
    assert hangs, [f"{f.id}: {f.title}" for f in diagnosis.diagnoses]
    first = hangs[0]
    # Batch 4 of 32 holds indices 96..127: index 100 is the first that blocks.
    assert "produced no batch" in first.title and "at batch 4" in first.title
    assert "__getitem__(index=100)" in first.title
    assert f"train.py:{waits}" in first.title and "time.sleep(3600)" in first.title
    assert first.location == f"train.py:{waits}"
    assert any(f'line {waits}, in __getitem__' in e for e in first.evidence)
    assert first.metrics["fatal"] is True
    assert diagnosis.exit_code(FailOn.ERROR) is ExitCode.USAGE
    # Every later reader failed at once with the same reason: one deadline per run.
    assert all(f.title.split(": ", 1)[1] == first.title.split(": ", 1)[1] for f in hangs)
    # A check may take longer than the deadline for its own work; those that stopped at the
    # hang must include exactly one that waited for it.
    stopped = [c for c in diagnosis.checks if "produced no batch" in (c.reason or "")]
    waited = [c for c in stopped if c.duration_s >= DEADLINE]
    assert len(waited) == 1, [(c.name, c.duration_s, c.reason) for c in diagnosis.checks]
    # The workers' case reads the stuck batch again in this process: one more deadline at most.
    assert waited[0].duration_s < (2 if workers else 1) * DEADLINE + 5
    assert elapsed < 60


def test_a_hang_at_the_first_batch_is_a_broken_entrypoint(make_project):
    path, waits, _ = project(make_project, "stuck=lambda i: i == 5")
    diagnosis = run(path)
    [finding] = diagnosis.diagnoses
    assert finding.id == "entrypoint-error" and finding.metrics["fatal"] is True
    assert "produced no batch" in finding.title and "__getitem__(index=5)" in finding.title
    assert f"train.py:{waits}" in finding.title
    assert any(f"line {waits}, in __getitem__" in e for e in finding.evidence)
    assert diagnosis.exit_code(FailOn.NEVER) is ExitCode.USAGE


@pytest.mark.parametrize("workers", [0, 2], ids=["num_workers=0", "num_workers=2"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_loader_that_raises_on_a_later_batch_is_as_broken_as_on_the_first(make_project, workers, batch):
    index = 32 * (batch - 1) + 6
    loader = f", num_workers={workers}" if workers else ""
    path, _, raises = project(make_project, f"bad=lambda i: i == {index}", loader)
    diagnosis = run(path, stages=(Stage.RUN,))
    errors = [f for f in diagnosis.diagnoses if f.id == "entrypoint-error"]
    assert errors, [f"{f.id}: {f.title}" for f in diagnosis.diagnoses]
    title = errors[0].title
    assert f"iterating the train_loader raised ValueError at batch {batch}: corrupt record {index}" in title
    assert f"__getitem__(index={index})" in title
    trace = "\n".join(errors[0].evidence)
    assert f"line {raises}, in __getitem__" in trace and "dldoctor" not in trace.replace(str(path), "")
    assert diagnosis.exit_code(FailOn.NEVER) is ExitCode.USAGE


@pytest.mark.slow
def test_the_cli_ends_a_hung_loader_within_two_minutes_with_the_standard_profile(make_project):
    path, waits, _ = project(make_project, "stuck=lambda i: i >= 100")
    started = time.perf_counter()
    proc = run_cli("run", path, "--device", "cpu", "--profile", "standard", timeout=120)
    elapsed = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    assert elapsed < 120
    assert proc.returncode == 2, output
    assert "__getitem__(index=100)" in output and f"train.py:{waits}" in output
    assert "time.sleep(3600)" in output
    assert "Traceback (most recent call last)" not in output


# -- the reader itself ------------------------------------------------------------------------
def _context(path, **run) -> Context:
    loaded = load_target(str(path), None)
    config = load_config(None, None, "standard")
    config = Config(merge(dict(config.values), {"run": run}, "test"), config.profile)
    return Context(loaded, config, torch.device("cpu"), 0)


class Stuck(Dataset):
    """Blocks on one index (until released), so a test can pick the index from a reference pass."""

    def __init__(self, n: int, stuck: int):
        self.n, self.stuck, self.release = n, stuck, threading.Event()

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index == self.stuck:
            self.release.wait()
        return torch.tensor([float(index)]), torch.tensor(index % 2)


def test_a_shuffled_worker_loader_hang_is_replayed_to_its_index(tmp_path):
    """With shuffle and workers, the stuck batch's indices come from replaying its sampler."""
    dataset = Stuck(200, stuck=-1)
    loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(3))
    with isolated_rng(0), restored_generators(loader):
        reference = [b[0].reshape(-1).long().tolist() for b in DataLoader(
            dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(3))]
    dataset.stuck = reference[2][5]  # the 6th item of batch 3
    path = tmp_path / "spec.py"
    path.write_text("def dldoctor_spec():\n    return {}\n")
    reader = GuardedReader((tmp_path, ), floor_s=1.0, factor=10.0)
    state = loader.generator.get_state()
    with isolated_rng(0), restored_generators(loader), pytest.raises(CheckIncomplete) as raised:
        for _ in reader.read("train", lambda: loader, what="iterating the train_loader", loader=loader):
            pass
    dataset.release.set()
    assert f"__getitem__(index={dataset.stuck})" in raised.value.reason
    assert "at batch 3" in raised.value.reason and "num_workers=2" in raised.value.reason
    assert torch.equal(loader.generator.get_state(), state)
    # The split is hung: the next read fails at once, with the same error.
    t0 = time.perf_counter()
    with pytest.raises(CheckIncomplete) as again:
        next(iter(reader.read("train", lambda: loader, what="x", loader=loader)))
    assert again.value is raised.value and time.perf_counter() - t0 < 0.5


def test_batches_through_the_reader_are_those_of_a_plain_pass(make_project):
    path, _, _ = project(make_project, "", ", shuffle=True")
    ctx = _context(path)
    loader = ctx.loader("train")
    with isolated_rng(0), restored_generators(loader):
        plain = list(loader)
    with isolated_rng(0), restored_generators(loader):
        guarded = list(ctx.read("train", loader))
    assert len(plain) == len(guarded) == 8
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(plain, guarded))


def test_the_deadline_is_a_floor_or_a_multiple_of_the_slowest_batch():
    reader = GuardedReader((), floor_s=0.5, factor=4.0)
    assert reader.deadline("train") == 0.5

    def slow():
        for i in range(3):
            time.sleep(0.2)
            yield i

    assert list(reader.read("train", slow, what="x")) == [0, 1, 2]
    assert 0.8 <= reader.deadline("train") < 2.0  # 4 x ~0.2 s
    assert reader.deadline("val") == 0.5


def test_items_that_report_progress_are_judged_per_item_not_per_chunk():
    """A chunk of slow items takes longer than the deadline, but no single item does."""
    reader = GuardedReader((), floor_s=0.5, factor=1.0)

    def chunks():
        for _ in range(2):
            for _ in range(6):
                time.sleep(0.15)
                progress()
            yield "chunk"

    assert list(reader.read("train", chunks, what="x", unit="item")) == ["chunk", "chunk"]


class _SlowToRelease:
    """An object whose finalizer takes ``seconds`` (a DataLoader iterator shutting down its workers)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __del__(self):
        time.sleep(self.seconds)


def _finalizer_mid_batch(seconds: float):
    """A source whose second batch releases a slow-to-finalize object on the reading thread.

    Released by reference counting, so that only this finalizer runs there: a collection
    would also finalize whatever earlier tests left for the collector (DataLoader iterators
    that wait seconds for their workers), and the time allowed would no longer be this one's.
    """
    def source():
        yield 0
        slow = _SlowToRelease(seconds)
        del slow
        yield 1
    gc.collect()  # earlier tests' garbage is finalized here, on the test's own thread
    return source


def test_time_in_a_finalizer_on_the_reading_thread_is_not_the_loaders():
    """The garbage collector runs finalizers of unrelated objects on whichever thread
    allocates; the reader's thread is one. Seconds spent there are not a hang."""
    reader = GuardedReader((), floor_s=0.5, factor=1.0)
    started = time.perf_counter()
    assert list(reader.read("train", _finalizer_mid_batch(0.8), what="x")) == [0, 1]
    assert reader.hung("train") is None and time.perf_counter() - started >= 0.8


def test_a_finalizer_that_never_ends_is_still_a_hang_after_a_bounded_grace():
    reader = GuardedReader((), floor_s=0.3, factor=1.0)
    started = time.perf_counter()
    with pytest.raises(CheckIncomplete, match="at batch 2"):
        list(reader.read("train", _finalizer_mid_batch(10), what="x"))
    # The deadline, then at most two more of it, while the thread is in the finalizer.
    assert time.perf_counter() - started < 0.3 * 3 + 1.0


def test_a_read_interrupted_by_the_check_budget_is_waited_for_not_repeated():
    """A check that runs out of time mid-batch leaves the batch in flight; the next read of
    the split waits for it (within the same deadline) instead of starting a second one."""
    from dldoctor.core.pipeline import CheckTimeout, time_limit

    reader = GuardedReader((), floor_s=5.0, factor=1.0)
    calls = []

    def source():
        calls.append(1)
        time.sleep(0.6)
        yield "late"

    with pytest.raises(CheckTimeout), time_limit(0.2):
        list(reader.read("train", source, what="x"))
    t0 = time.perf_counter()
    assert list(reader.read("train", lambda: ["next"], what="x")) == ["next"]
    assert 0.2 < time.perf_counter() - t0 < 2.0
    assert reader.hung("train") is None and len(calls) == 1


def test_a_source_that_raises_is_an_entrypoint_error_naming_the_batch():
    reader = GuardedReader((), floor_s=5.0, factor=1.0)

    def source():
        yield 1
        yield 2
        raise OSError("cannot open shard 3")

    with pytest.raises(EntrypointError) as raised:
        list(reader.read("val", source, what="iterating the val_loader"))
    assert raised.value.message == "iterating the val_loader raised OSError at batch 3: cannot open shard 3"
