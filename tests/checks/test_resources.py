"""The resource checks: memory leaks (overfit and training runs), the input pipeline, throughput.

The training-based tests run the real checks on tiny models; the judgement rules are
also tested on synthetic records, which do not depend on the machine's speed.
"""

import dataclasses

import pytest

from dldoctor.core.config import default_config
from dldoctor.core.severity import Severity
from dldoctor.probes.resources.holders import Holding, Snapshot
from dldoctor.probes.resources.loader import ItemTiming
from dldoctor.probes.resources.monitor import ResourceRecord
from dldoctor.probes.resources.throughput import StepTiming
from dldoctor.readings import leaks as leak_verdict
from dldoctor.readings.pipeline import Cause, fixes, scaling_text
from dldoctor.readings.step_split import StepSplit

# Verdicts from measured wait fractions and memory growth: run alone (make test's serial
# phase); beside other tests on a small machine they read the others' load.
pytestmark = pytest.mark.serial

# Random labels: a single batch takes the whole overfit budget to memorise, so the
# memory series is long enough to judge (a run that converges in 15 steps is not judged).
DATA = """
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 16, generator=g)
y = torch.randint(0, 4, (256,), generator=g)
"""

SPEC = DATA + """
{code}

def dldoctor_spec():
    return {{
        "model": {model},
        "train_loader": {loader},
        "loss_fn": {loss},
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }}
"""

MLP = "lambda: nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))"
LOADER = "DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))"

CACHING_MODEL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 64), nn.Linear(64, 4)
        self.cache = []

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        self.cache.append(h)
        return self.fc2(h)
"""

HISTORY_LOSS = """
class Logged(nn.Module):
    def __init__(self):
        super().__init__()
        self.ce = nn.CrossEntropyLoss()
        self.history = []

    def forward(self, out, target):
        loss = self.ce(out, target)
        self.history.append(loss{keep})
        return loss
"""

RUNNING_LOSS = """
class Running:
    def __init__(self):
        self.total = torch.zeros(())

    def __call__(self, out, target):
        loss = nn.functional.cross_entropy(out, target)
        self.total = self.total + loss
        return loss
"""

GLOBAL_LIST = """
SEEN = []

def keep(out):
    SEEN.append(out)
    return out

def forward(model, batch):
    x, t = batch
    return keep(model(x)), t
"""


def leak_run(make_project, select="memory-leak", code="", model=MLP, loader=LOADER,
             loss="nn.CrossEntropyLoss()", extra="", **options):
    """The memory-leak findings and the resource record the check judged."""
    from dldoctor.core.runner import RunOptions, diagnose

    path = make_project(SPEC.format(code=code, model=model, loader=loader, loss=loss, extra=extra))
    measurements: dict = {}
    diagnosis = diagnose(RunOptions(target=str(path), device="cpu", select=(select,), **options),
                          measurements=measurements)
    records = [v.resources for k, v in measurements.items()
               if k.startswith(("overfit:", "training:main")) and hasattr(v, "resources")]
    errored = [c for c in diagnosis.checks if c.status.value == "errored"]
    assert not errored, errored
    return [f for f in diagnosis.diagnoses if f.id == "memory-leak"], records[0]


@pytest.mark.parametrize("code,model,loss,extra,where,how", [
    (CACHING_MODEL, "Net", "nn.CrossEntropyLoss()", "", "model.cache", "keeps tensors with their autograd graphs"),
    (HISTORY_LOSS.format(keep=""), MLP, "Logged()", "", "loss_fn.history", "keeps tensors with their autograd"),
    (RUNNING_LOSS, MLP, "Running()", "", "loss_fn.total", "chains every step's autograd graph"),
    (GLOBAL_LIST, MLP, "nn.CrossEntropyLoss()", '"forward": forward,', "forward.<global SEEN>",
     "keeps tensors with their autograd"),
], ids=["list-attribute-on-model", "loss-keeps-history", "accumulated-loss-tensor", "global-list-in-forward"])
def test_leaks_in_the_single_batch_run_are_found_and_localised(make_project, code, model, loss, extra, where, how):
    [finding], record = leak_run(make_project, code=code, model=model, loss=loss, extra=extra)
    assert finding.severity is Severity.WARNING and finding.location == where
    assert how in finding.title
    assert finding.metrics["bytes_per_step"] > 1024 + record.own_bytes_per_step
    assert finding.metrics["bytes_per_step_low"] > 0 and finding.metrics["culprit"] == where
    assert finding.metrics["projected_steps_to_exhaustion"] > 0
    assert where in finding.fixes[0]
    assert any("run out after about" in e for e in finding.evidence)


@pytest.mark.parametrize("code,model,loss", [
    ("", MLP, "nn.CrossEntropyLoss()"),  # Adam's state appears at the first step, then nothing grows
    (HISTORY_LOSS.format(keep=".item()"), MLP, "Logged()"),  # floats, not tensors
    (HISTORY_LOSS.format(keep=".detach()"), MLP, "Logged()"),  # a detached scalar a step: under the floor
    (CACHING_MODEL.replace("self.cache.append(h)", "self.cache = [h.detach()]"), "Net", "nn.CrossEntropyLoss()"),
], ids=["adam-state", "loss-history-of-floats", "loss-history-detached", "last-activation-overwritten"])
def test_memory_that_plateaus_after_warm_up_is_not_a_leak(make_project, code, model, loss):
    findings, record = leak_run(make_project, code=code, model=model, loss=loss)
    assert record.steps >= 40, "the run must be long enough to be judged"
    assert findings == []


DATASET_LEAK = """
class Logged(torch.utils.data.Dataset):
    def __init__(self):
        self.seen = []
    def __len__(self):
        return len(X)
    def __getitem__(self, i):
        self.seen.append(X[i].repeat(16))  # every item it ever served (0.5 kB each, a small image's worth)
        return X[i], y[i]
"""

DATASET_CACHE = """
class Cached(torch.utils.data.Dataset):
    def __init__(self):
        self.cache = {}
    def __len__(self):
        return len(X)
    def __getitem__(self, i):
        if i not in self.cache:
            self.cache[i] = (X[i].clone(), y[i].clone())
        return self.cache[i]
"""


def test_a_dataset_that_keeps_every_item_leaks_in_the_training_run(make_project):
    loader = "DataLoader(Logged(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))"
    [finding], _ = leak_run(make_project, select="memory-leak-training", code=DATASET_LEAK, loader=loader)
    assert finding.check == "memory-leak-training" and finding.location == "train_loader.dataset.seen"
    assert finding.metrics["culprit_tensors_per_step"] >= 32
    assert "short training run" in finding.evidence[0]


def test_a_bounded_dataset_cache_is_not_a_leak(make_project):
    loader = "DataLoader(Cached(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))"
    findings, record = leak_run(make_project, select="memory-leak-training", code=DATASET_CACHE, loader=loader,
                                overrides=(("training.epochs", 3),))
    assert record.steps >= 20
    assert findings == []


# -- the judgement on synthetic records (no timing, no training) ----------------------------------
CFG = default_config()["memory_leak"]


def record(memory, host=(), snapshots=(), own=0.0):
    n = len(memory) or len(host)
    return ResourceRecord(wait_s=(0.0,) * n, copy_s=(0.0,) * n, compute_s=(0.01,) * n, samples=(32,) * n,
                          memory=tuple(memory), memory_source="test allocated", host_memory=tuple(host),
                          host_source="test host", snapshots=tuple(snapshots), own_bytes_per_step=own)


def test_judge_reports_the_rate_the_projection_and_the_growing_path():
    memory = [10**8 + 8_000 * i for i in range(100)]
    snaps = [Snapshot(s, {"model.cache": Holding(tensors=s, bytes=8_000.0 * s), "model.fc.weight": Holding(1, 4e3)})
             for s in (4, 8, 16, 32, 64, 99)]
    leak = leak_verdict.judge(record(memory, snapshots=snaps), CFG, (10**12, "test RAM"), None)
    assert leak.slope == pytest.approx(8_000) and leak.severity is Severity.WARNING
    assert leak.projected_steps == pytest.approx(10**12 / 8_000)
    assert [g.path for g in leak.growth] == ["model.cache"]
    parts = leak_verdict.finding_parts(leak, "test run", 10, 0.99)
    assert parts["location"] == "model.cache" and parts["confidence"] == 0.9
    assert "epochs of 10 steps" in parts["evidence"][-1]


def test_a_leak_that_exhausts_memory_within_the_horizon_is_an_error():
    memory = [10**8 + 8_000 * i for i in range(100)]
    leak = leak_verdict.judge(record(memory), CFG, (8_000 * 5_000, "test RAM"), None)
    assert leak.severity is Severity.ERROR and leak.projected_steps == pytest.approx(5_000)
    parts = leak_verdict.finding_parts(leak, "test run", None, 0.99)
    assert parts["location"] == "training step" and "runs out after" in parts["title"]
    assert any("no attribute" in e for e in parts["evidence"])


def test_host_memory_growth_on_an_accelerator_is_judged_too():
    flat = [5 * 10**8] * 100
    growing = [10**8 + 20_000 * i for i in range(100)]
    leak = leak_verdict.judge(record(flat, host=growing), CFG, (10**12, "device"), (10**12, "host RAM"))
    assert leak is not None and leak.source == "test host"
    assert leak_verdict.judge(record(flat, host=flat), CFG, None, None) is None


def test_the_runs_own_records_raise_the_floor():
    memory = [10**8 + 4_500 * i for i in range(100)]  # just above the 4 kB floor
    assert leak_verdict.judge(record(memory), CFG, None, None) is not None
    assert leak_verdict.judge(record(memory, own=600.0), CFG, None, None) is None


#: The memory series (bytes above the first reading, at each read step) of a healthy script's own loop:
#: the digits CNN, 64 a batch, watched 40 steps. Its first epoch's last batch holds 5 samples: kernels built
#: for that shape raise malloc's in-use bytes by 176 kB once, at step 28 (recorded from
#: benchmarks/distributed_cost_inputs/digits_ddp.py in single-process script mode).
DIGITS_STEPS = [*range(32), 35]
DIGITS_MEMORY = [0, 6400, 9136, 9936, 10432, 11360, 11840, 13088, 14480, 15040, 15792, 16432, 17344, 17840, 18768,
                 36048, 53232, 53792, 55024, 56256, 56784, 57456, 58096, 58128, 58128, 58640, 58672, 234736,
                 252192, 268352, 268288, 269408, 269376]


def test_one_level_shift_is_not_a_leak_but_a_climb_beside_it_is():
    """A single rise that makes most of the window's climb (a new input shape's kernels, a cache filled once)
    is judged without it; a steady climb, with or without such a shift beside it, and a climb in bursts stay
    leaks."""
    def judged(memory, steps=DIGITS_STEPS):
        return leak_verdict.detect([10**8 + m for m in memory], CFG, 80.0, steps)

    assert judged(DIGITS_MEMORY) is None
    assert judged([m + 5_000 * s for m, s in zip(DIGITS_MEMORY, DIGITS_STEPS)]) is not None
    steady = [5_000 * i for i in range(40)]
    assert judged(steady, None) is not None
    assert judged([m + (176_000 if i >= 28 else 0) for i, m in enumerate(steady)], None) is not None
    assert judged([30_000 * (i // 5) for i in range(40)], None) is not None  # six bursts in the window


# -- the input pipeline ------------------------------------------------------------------------
SLEEPY = """
import time

class Sleepy(torch.utils.data.Dataset):
    def __len__(self):
        return 96
    def __getitem__(self, i):
        time.sleep(0.005)  # a remote read
        return X[i], y[i]
"""


def pipeline_run(make_project, code="", loader=LOADER):
    from tests.conftest import diagnose_file

    path = make_project(SPEC.format(code=code, model=MLP, loader=loader, loss="nn.CrossEntropyLoss()", extra=""))
    diagnosis = diagnose_file(path, select=("input-pipeline",), overrides=(("training.epochs", 2),))
    assert all(c.status.value != "errored" for c in diagnosis.checks), diagnosis.checks
    return [f for f in diagnosis.diagnoses if f.id == "input-pipeline-bottleneck"], diagnosis


def test_a_getitem_that_waits_is_a_bottleneck_named_with_its_time_per_item(make_project):
    loader = "DataLoader(Sleepy(), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1))"
    [finding], diagnosis = pipeline_run(make_project, SLEEPY, loader)
    assert finding.severity is Severity.WARNING
    assert finding.location.startswith("train_loader.dataset: Sleepy.__getitem__ (train.py:")
    assert finding.metrics["cause"] == "getitem-wait" and finding.metrics["item_wall_s"] >= 0.005
    assert finding.metrics["item_cpu_s"] < 0.5 * finding.metrics["item_wall_s"]
    assert finding.metrics["wait_fraction"] >= 0.5
    assert "waiting" in finding.title and "per item" in finding.title
    assert any("num_workers=" in f for f in finding.fixes)
    report = diagnosis.reports["throughput"]
    assert report["samples_per_s_loader"] < report["samples_per_s_preloaded"]


def test_an_in_memory_loader_gets_the_throughput_report_and_measurements_only(make_project):
    found, diagnosis = pipeline_run(make_project)
    assert found == []  # no bottleneck: the throughput is a measurement, not a finding
    report = diagnosis.reports["throughput"]
    for key in ("samples_per_s_loader", "samples_per_s_preloaded", "wait_fraction", "compute_s_per_step",
                "bare_loader_s_per_batch"):
        assert report[key] is not None and report[key] >= 0, key
    assert report["batch_scaling"] == []  # CPU: not measured
    measured = diagnosis.measurements
    rate, wait = measured["throughput.samples_per_s"], measured["throughput.data_wait_share"]
    assert rate["value"] == pytest.approx(report["samples_per_s_loader"]) and rate["better"] == "higher"
    assert wait["value"] == pytest.approx(report["wait_fraction"]) and wait["better"] == "lower"
    # one standard error from the spread of the timed steps: positive, and below the value itself (a few
    # steps the machine stalled can make it half the value: 8,404 of 15,173 samples/s in one CI run)
    assert 0 < rate["noise"] < rate["value"] and 0 < wait["noise"] < 0.5
    assert rate["check"] == "input-pipeline" and rate["unit"] == "samples/s"


def split(wait=0.08, compute=0.01, copy=0.0):
    return StepSplit(steps=30, wait_s=wait, copy_s=copy, compute_s=compute, samples=32, epoch_start_extra_s=0.0)


def items(wall=0.002, cpu_fraction=1.0, reads=0.0, collate=0.0001, batch=0.065, batch_cpu=None):
    return ItemTiming(items=32, wall_s=wall, cpu_s=wall * cpu_fraction, collate_s=collate, where="DS.__getitem__",
                      cpu_fraction=cpu_fraction, read_bytes=reads * 4096, read_calls=reads, batch_s=batch,
                      batch_cpu_s=batch_cpu)


@pytest.mark.parametrize("timing,device,kind", [
    (items(), "cpu", "getitem-cpu"),
    (items(cpu_fraction=0.05), "cpu", "getitem-wait"),
    (items(reads=5.0), "cpu", "getitem-read"),
    (items(wall=0.0001, collate=0.06), "cpu", "collate"),
    (items(wall=0.0001), "cpu", "loader"),
    (None, "cpu", "loader"),
    (items(), "cuda", "getitem-cpu"),
])
def test_the_slow_part_is_classified_from_the_item_timings(timing, device, kind):
    assert Cause.classify(split(), timing, 32, 0.5, 0.5, device).kind == kind


def test_a_slow_copy_to_the_device_comes_first_on_cuda():
    cause = Cause.classify(split(copy=0.06), items(), 32, 0.5, 0.5, "cuda")
    assert cause.kind == "copy" and cause.location(None, None) == "train_loader (host-to-device copy)"
    assert "pin_memory=True" in fixes(cause, None, 32, 0, 8, 4, False, "cuda", 0.01)[0]


def test_cpu_time_shares_survive_a_busy_machine():
    # the items ran undisturbed, the loader's batches were switched out: wall-clock
    # shares disagree, CPU-time shares do not
    busy = items(wall=0.0005, batch=0.060, batch_cpu=0.017)
    assert Cause.classify(split(), busy, 32, 0.5, 0.5, "cpu").kind == "getitem-cpu"


def test_fixes_follow_the_cause():
    read = fixes(Cause("getitem-read", 1.0), items(reads=5.0), 32, 0, 9, 2, False, "cpu", 0.01)
    assert read[0].startswith("Read the data once") and "num_workers=9" in read[1]  # I/O: more workers than cores
    cpu = fixes(Cause("getitem-cpu", 1.0), items(), 32, 0, 9, 2, False, "cpu", 0.01)
    assert cpu[0].startswith("Do the work of DS.__getitem__ once") and "num_workers=2" in cpu[1]
    assert "Raise DataLoader(num_workers=...) from 2" in fixes(Cause("loader", 1.0), None, 32, 2, 4, 8, True,
                                                                "cpu", 0.01)[0]


def test_batch_scaling_says_whether_the_device_is_saturated():
    free = scaling_text([StepTiming(64, 0.010, 5), StepTiming(128, 0.011, 5), StepTiming(256, 0.013, 5)], 1.5)
    assert "not saturated at batch 64" in free and "batch 256 gives 3.1x the throughput" in free
    full = scaling_text([StepTiming(64, 0.010, 5), StepTiming(128, 0.020, 5)], 1.5)
    assert "saturated at batch 64, a larger batch would not raise throughput" in full
    assert scaling_text([StepTiming(64, 0.010, 5)], 1.5) == ""


def test_a_coarse_resident_set_needs_a_larger_climb():
    creeping = [10**8 + 8_192 * (i // 2) for i in range(100)]  # two pages every other step
    exact = record(creeping)
    coarse = dataclasses.replace(exact, memory_coarse=True)
    assert leak_verdict.judge(exact, CFG, None, None) is not None
    assert leak_verdict.judge(coarse, CFG, None, None) is None
    assert leak_verdict.judge(dataclasses.replace(record([10**8 + 40_000 * i for i in range(100)]),
                                                  memory_coarse=True), CFG, None, None) is not None
