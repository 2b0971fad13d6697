"""Resource probes: memory reading, what objects hold, per-step records, loader timing."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dldoctor.probes.resources.holders import container_path, growth, roots_of, snapshot
from dldoctor.probes.resources.loader import bare_loader_seconds, getitem_location, time_items
from dldoctor.probes.resources.memory import MemoryReader
from dldoctor.probes.resources.monitor import DENSE_READS, RECORD_BYTES, SPARSE_INTERVAL, StepMonitor


def test_the_cpu_reader_sees_a_tensor_kept_alive():
    reader = MemoryReader(torch.device("cpu"))
    before = reader.read()
    kept = torch.ones(1 << 20, dtype=torch.uint8)
    assert reader.read() - before >= (1 << 20) * 0.9
    del kept
    assert reader.read_host is None and reader.source


class Caching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.outputs = []
        self.blocks = nn.ModuleList()

    def forward(self, x):
        out = self.fc(x)
        self.outputs.append(out)
        return out

    @property
    def explosive(self):  # the walk must not call user code
        raise AssertionError("property called")


def test_snapshots_say_which_attribute_grows_and_how():
    model = Caching()
    roots = roots_of(model)
    snaps = []
    for step in range(6):
        model(torch.randn(2, 4)).sum().backward()
        if step % 2 == 1:
            model.blocks.append(nn.Linear(4, 4))  # a module list that grows too
        snaps.append(snapshot(step, roots))
    found = {g.path: g for g in growth(snaps)}
    assert set(found) == {"model.outputs", "model.blocks"}
    out = found["model.outputs"]
    assert out.total.tensors == 5 and out.total.bytes == 5 * 2 * 4 * 4 and out.total.graph_nodes > 0
    assert out.still_growing and out.per_step.tensors == 1
    assert found["model.blocks"].total.bytes == 3 * (16 + 4) * 4  # Linear(4, 4) added at steps 1, 3, 5
    assert snaps[-1].holdings["model.fc.<parameters>"].tensors == 2  # recorded per module, and do not grow


def test_closures_and_globals_of_user_functions_are_walked_but_library_code_is_not():
    kept = []

    def loss_fn(out, target):
        kept.append(out)
        return nn.functional.mse_loss(out, target)

    roots = roots_of(nn.Linear(2, 2), loss_fn, forward=None)
    assert "loss_fn.<closure kept>" in roots
    assert set(roots_of(nn.Linear(2, 2), nn.functional.cross_entropy)) == {"model"}


def test_container_paths_group_the_elements_of_a_list():
    assert container_path("model.blocks.57.weight") == "model.blocks"
    assert container_path("loss_fn.history") == "loss_fn.history"
    assert container_path("model.layer1.conv.weight") == "model.layer1.conv.weight"


def test_the_monitor_snapshots_at_spaced_steps_and_counts_its_own_records():
    model = Caching()
    monitor = StepMonitor(torch.device("cpu"), lambda: roots_of(model), own_records=3)
    for _ in range(40):
        model(torch.randn(2, 4))
        monitor.step(0.001, 0.002, 2, copy_s=0.0005)
    record = monitor.finish()
    assert [s.step for s in record.snapshots] == [4, 16, 39]
    assert record.steps == 40 and record.samples == (2,) * 40
    assert record.memory_steps[:32] == tuple(range(32))  # the first 32 steps: every one
    assert record.own_bytes_per_step == RECORD_BYTES * (3 + 5)
    assert record.overhead_s > 0
    assert growth(record.snapshots)[0].path == "model.outputs"


class Items(Dataset):
    def __init__(self, folder=None):
        self.folder = folder

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if self.folder is not None:
            return torch.from_numpy(np.load(self.folder / "row.npy")), i
        return torch.randn(3), i


def test_memory_reads_depend_on_the_step_count_alone():
    """Dense reads first, then every SPARSE_INTERVAL-th step, whatever a step or a read costs:
    the same run reads the same steps on a busy machine and an idle one."""
    schedules = []
    for compute_s in (1e-7, 1.0):  # a step far shorter than a read, and one far longer
        monitor = StepMonitor(torch.device("cpu"))
        for _ in range(200):
            monitor.step(0.0, compute_s, 1)
        schedules.append(monitor.finish().memory_steps)
    assert schedules[0] == schedules[1]
    steps = schedules[0]
    assert steps[:DENSE_READS] == tuple(range(DENSE_READS))
    assert all(b - a == SPARSE_INTERVAL for a, b in itertools.pairwise(steps[DENSE_READS - 1:]))


def test_item_timing_counts_reads_and_leaves_the_generators_alone(tmp_path):
    np.save(tmp_path / "row.npy", np.arange(3, dtype=np.float32))
    g = torch.Generator().manual_seed(5)
    loader = DataLoader(Items(tmp_path), batch_size=4, shuffle=True, generator=g)
    from dldoctor.core.context import restored_generators

    state = g.get_state()
    with restored_generators(loader):
        timing = time_items(loader, max_items=8)
    assert torch.equal(g.get_state(), state)
    assert timing.items == 8 and timing.wall_s > 0 and timing.batch_s > 0 and timing.collate_s > 0
    assert timing.where.startswith("Items.__getitem__ (test_resource_probes.py:")
    if timing.read_calls is not None:  # Linux
        assert timing.read_calls >= 1 and timing.read_bytes > 0
        assert time_items(DataLoader(Items(), batch_size=4)).read_calls < 1


def test_item_timing_needs_a_map_style_dataset():
    assert time_items([(torch.zeros(2), torch.zeros(2))]) is None
    subset = torch.utils.data.Subset(Items(), [0, 1])
    assert getitem_location(subset).startswith("Items.__getitem__")


@pytest.mark.parametrize("batch", [
    (torch.randn(16, 3), torch.arange(16)),
    {"x": torch.randn(16, 3), "y": torch.arange(16), "ids": [f"s{i}" for i in range(16)]},
])
def test_the_bare_loader_time_is_measured_for_nested_batches(batch):
    seconds = bare_loader_seconds(batch, batches=3)
    assert seconds is not None and 0 < seconds < 1.0


def test_batch_scaling_times_each_size(make_project):
    from dldoctor.core.config import load_config
    from dldoctor.core.context import Context
    from dldoctor.loading.entrypoint import load_target
    from dldoctor.probes.resources.throughput import batch_scaling, preloaded_step
    from tests.conftest import HEALTHY_BODY

    path = make_project(HEALTHY_BODY)
    ctx = Context(load_target(str(path), None), load_config(path.parent, None, "standard"), torch.device("cpu"))
    ctx.prepare()
    timings = batch_scaling(ctx, ctx.first_batch("train"), steps=2)
    assert [t.batch_size for t in timings] == [32, 64, 128]
    assert all(t.step_s > 0 and t.steps >= 1 for t in timings)
    pre = preloaded_step(ctx, ctx.batches("train"), steps=3)
    assert pre.batch_size == 32 and pre.samples_per_s > 0
