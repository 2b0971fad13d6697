"""Script mode: the user's own loop, watched. Each loop bug is a tiny unmodified script that
must trigger its ID; healthy loops that look like those bugs must stay silent."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from tests.conftest import diagnose_file, run_cli

LOOP_CHECKS = ("loop-gradients", "loop-mode", "loop-schedule", "loop-curve", "loop-memory-leak")

HEADER = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(640, 8)
y = (X[:, 0] + X[:, 1] > 0).long()
train = DataLoader(TensorDataset(X[:512], y[:512]), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(X[512:], y[512:]), batch_size=64)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
crit = nn.CrossEntropyLoss()
"""

HEALTHY_LOOP = """
for epoch in range(4):
    model.train()
    for xb, yb in train:
        opt.zero_grad()
        loss = crit(model(xb), yb)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in val) / 128
    print(epoch, round(loss.item(), 3), acc)
"""


def script(make_project, loop: str, header: str = HEADER, name: str = "train.py"):
    return make_project(loop, name=name, header=header)


def loop_ids(path, **options):
    diagnosis = diagnose_file(path, select=LOOP_CHECKS, **options)
    return diagnosis, [f.id for f in diagnosis.diagnoses]


BUGS = {
    "no zero_grad": ("stale-gradients", HEALTHY_LOOP.replace("        opt.zero_grad()\n", "")),
    "zero_grad between backward and step": ("no-gradient-flow", HEALTHY_LOOP.replace(
        "        opt.zero_grad()\n        loss = crit(model(xb), yb)\n        loss.backward()\n",
        "        loss = crit(model(xb), yb)\n        loss.backward()\n        opt.zero_grad()\n")),
    "backward on a detached output": ("no-gradient-flow", HEALTHY_LOOP.replace(
        "loss = crit(model(xb), yb)", "loss = crit(model(xb).detach().requires_grad_(), yb)")),
    "model rebuilt after the optimizer": ("no-gradient-flow",
                                          "model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.1), "
                                          "nn.Linear(32, 2))\n" + HEALTHY_LOOP),
    "step never called": ("no-gradient-flow", HEALTHY_LOOP.replace("        opt.step()\n", "")),
    "eval mode left on after validation": ("wrong-mode", "model.train()\n" + HEALTHY_LOOP.replace(
        "    model.train()\n", "")),
    "eval mode from the start": ("wrong-mode", "model.eval()\n" + HEALTHY_LOOP.replace("    model.train()\n", "")
                                 .replace("    model.eval()\n", "")),
    "an epoch schedule stepped per batch": ("lr-too-low", HEALTHY_LOOP.replace(
        "for epoch in range(4):\n", "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)\n"
        "for epoch in range(4):\n").replace("        opt.step()\n", "        opt.step()\n        sched.step()\n")),
    "a running total that keeps every step's graph": ("memory-leak", HEALTHY_LOOP.replace(
        "for epoch in range(4):\n", "total = 0\nfor epoch in range(4):\n").replace(
        "        opt.step()\n", "        opt.step()\n        total += loss\n")),
    "a learning rate that diverges": ("lr-too-high", HEALTHY_LOOP.replace(
        "    model.train()\n", "    model.train()\n    opt.param_groups[0][\"lr\"] = 40.0\n")),
}


@pytest.mark.parametrize("case", BUGS, ids=list(BUGS))
def test_each_loop_bug_is_named_at_the_users_line(make_project, case):
    expected, loop = BUGS[case]
    path = script(make_project, loop)
    diagnosis, ids = loop_ids(path)
    assert ids[:1] == [expected], [(f.id, f.title) for f in diagnosis.diagnoses]
    finding = diagnosis.diagnoses[0]
    assert finding.location.startswith("train.py:"), finding.location
    assert finding.severity.value in ("error", "warning")


HEALTHY = {
    "plain loop": HEALTHY_LOOP,
    "gradient accumulation": """
for epoch in range(4):
    model.train()
    opt.zero_grad()
    for i, (xb, yb) in enumerate(train):
        loss = crit(model(xb), yb) / 4
        loss.backward()
        if (i + 1) % 4 == 0:
            opt.step()
            opt.zero_grad()
""",
    "warm-up scheduler stepped per batch": HEALTHY_LOOP.replace(
        "for epoch in range(4):\n", "sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))\n"
        "for epoch in range(4):\n").replace("        opt.step()\n", "        opt.step()\n        sched.step()\n"),
    "frozen first layer": "model[0].requires_grad_(False)\n" + HEALTHY_LOOP,
    "optimizer over the head only": "opt = torch.optim.SGD(model[3].parameters(), lr=0.05)\n" + HEALTHY_LOOP,
    "two optimizers, GAN-style": """
disc = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
d_opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
g_opt = torch.optim.Adam(model.parameters(), lr=1e-3)
bce = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for xb, _ in train:
        fake = model(xb)
        real = torch.randn(len(xb), 2)
        d_opt.zero_grad()
        d_loss = bce(disc(real), torch.ones(len(xb), 1)) + bce(disc(fake.detach()), torch.zeros(len(xb), 1))
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        g_loss = bce(disc(fake), torch.ones(len(xb), 1))
        g_loss.backward()
        g_opt.step()
""",
    "gradients zeroed in place": HEALTHY_LOOP.replace("opt.zero_grad()", "opt.zero_grad(set_to_none=False)"),
    "a scheduler that ends with the script": HEALTHY_LOOP.replace("range(4)", "range(1)").replace(
        "for epoch in range(1):\n", "sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.001, total_iters=16)\n"
        "for epoch in range(1):\n").replace("        opt.step()\n", "        opt.step()\n        sched.step()\n"),
}


@pytest.mark.parametrize("case", HEALTHY, ids=list(HEALTHY))
def test_healthy_loops_that_look_like_bugs_stay_silent(make_project, case):
    path = script(make_project, HEALTHY[case])
    diagnosis, ids = loop_ids(path)
    ran = {c.name: c.status.value for c in diagnosis.checks if c.name in LOOP_CHECKS}
    assert ran == dict.fromkeys(LOOP_CHECKS, "passed"), (ran, [f.title for f in diagnosis.diagnoses])
    assert ids == [], [(f.id, f.title) for f in diagnosis.diagnoses]


def test_the_script_stops_at_the_budget_and_nothing_after_it_runs(make_project, tmp_path):
    marker = tmp_path / "finished.txt"
    loop = HEALTHY_LOOP.replace("range(4)", "range(50)") + f"open({str(marker)!r}, 'w').write('done')\n"
    path = script(make_project, loop)
    diagnosis, _ = loop_ids(path)
    watched = diagnosis.reports["watched_loop"]
    assert watched["stopped"] == "budget" and 40 <= watched["steps_watched"] <= 200
    assert not marker.exists()


EPOCH_METRIC = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(512, 8)
y = (X[:, 0] + X[:, 1] > 0).long()
train = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
model = nn.Sequential(nn.Linear(8, 512), nn.ReLU(), nn.Linear(512, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    outputs, targets = [], []
    for xb, yb in train:
        opt.zero_grad()
        out = model(xb)
        loss = nn.functional.cross_entropy(out, yb)
        loss.backward()
        opt.step()
        outputs.append(out)  # kept with its graph until the epoch's accuracy is computed
        targets.append(yb)
    print(epoch, (torch.cat(outputs).argmax(1) == torch.cat(targets)).float().mean().item())
"""


def test_memory_held_until_the_epoch_ends_is_judged_on_the_first_epoch(make_project):
    diagnosis, ids = loop_ids(script(make_project, EPOCH_METRIC, header=""))
    assert ids[:1] == ["memory-leak"], [(f.id, f.title) for f in diagnosis.diagnoses]
    leak = diagnosis.diagnoses[0]
    # given back every 64 steps: no exhaustion is projected, and an epoch's worth fits in memory
    assert leak.severity.value == "warning" and "until the epoch ends" in leak.title, leak.title
    assert leak.metrics["projected_steps_to_exhaustion"] is None
    # most of an epoch's growth (the slope times its 64 steps) comes back at its end
    assert leak.metrics["released_at_epoch_end"] > 0.5 * leak.metrics["held_per_epoch"]
    assert leak.location.startswith("train.py:")


def test_forward_hooks_narrow_to_the_model_and_are_removed(make_project):
    """From the second step the watcher hooks only the trained model (global forward hooks
    slow every module call); none of its hooks stays on the user's model."""
    from pathlib import Path

    from dldoctor.loading.script.record import WatchedLoop
    from dldoctor.loading.script.watch import Budget, Watcher

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher = Watcher(WatchedLoop(script="t", argv=["t"]), Budget(), (Path(__file__).parent,))
    with watcher:
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 2, (16,))).backward()
            opt.step()
        assert not watcher._forward_global and model._forward_hooks and model._forward_pre_hooks
    assert [s.training for s in watcher.record.steps] == [True] * 3
    assert len(watcher.kept) == 3 and not model._forward_hooks and not model._forward_pre_hooks


def test_no_hook_or_patch_outlives_the_run(make_project):
    from torch.nn.modules import module as module_hooks
    from torch.optim import optimizer as optimizer_hooks

    backward, init = torch.Tensor.backward, torch.optim.Optimizer.__init__
    iterate, ce = torch.utils.data.DataLoader.__iter__, torch.nn.functional.cross_entropy
    hooks = (len(module_hooks._global_forward_hooks), len(module_hooks._global_forward_pre_hooks),
             len(optimizer_hooks._global_optimizer_pre_hooks), len(optimizer_hooks._global_optimizer_post_hooks))
    argv, path_entries = list(sys.argv), list(sys.path)
    loop_ids(script(make_project, HEALTHY_LOOP + "raise RuntimeError('after training')\n"))
    assert (torch.Tensor.backward, torch.optim.Optimizer.__init__) == (backward, init)
    assert (torch.utils.data.DataLoader.__iter__, torch.nn.functional.cross_entropy) == (iterate, ce)
    assert hooks == (len(module_hooks._global_forward_hooks), len(module_hooks._global_forward_pre_hooks),
                     len(optimizer_hooks._global_optimizer_pre_hooks),
                     len(optimizer_hooks._global_optimizer_post_hooks))
    assert (sys.argv, sys.path) == (argv, path_entries)


ARGPARSE = """\
import argparse
import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    X = torch.randn(256, 6)
    y = (X[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(args.epochs):
        for i in range(0, 256, 32):
            loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
            loss.backward()
            opt.step()
        print("epoch", epoch, loss.item())


if __name__ == "__main__":
    main()
"""


def test_a_main_with_argparse_gets_its_arguments_after_the_double_dash(make_project):
    path = script(make_project, ARGPARSE, header="")
    proc = run_cli("run", path, "--select", ",".join(LOOP_CHECKS), "--format", "json", "--", "--epochs", "6")
    report = json.loads(proc.stdout)  # the script's prints went to stderr
    assert proc.returncode == 1, proc.stderr
    assert [d["id"] for d in report["diagnoses"]] == ["stale-gradients"]
    assert report["reports"]["watched_loop"]["argv"][1:] == ["--epochs", "6"]
    assert "epoch 0" in proc.stderr


def test_watch_steps_sets_how_many_steps_are_watched(make_project, tmp_path):
    marker = tmp_path / "finished.txt"
    path = script(make_project, HEALTHY_LOOP + f"open({str(marker)!r}, 'w').write('done')\n")
    proc = run_cli("run", path, "--select", ",".join(LOOP_CHECKS), "--format", "json", "--watch-steps", "7")
    watched = json.loads(proc.stdout)["reports"]["watched_loop"]
    assert (watched["steps_watched"], watched["stopped"]) == (7, "budget"), proc.stderr
    assert not marker.exists()
    proc = run_cli("run", path, "--watch-steps", "0")
    assert proc.returncode == 2 and "--watch-steps" in proc.stderr


def test_a_script_that_exits_before_training_says_what_to_pass(make_project):
    path = script(make_project, ARGPARSE, header="")
    proc = run_cli("run", path)
    assert proc.returncode == 2
    assert "exited with status 2 before its first optimizer step" in proc.stderr
    assert "after --" in proc.stderr and "Traceback" not in proc.stderr


def test_mode_spec_keeps_the_spec_contract(make_project):
    path = script(make_project, HEALTHY_LOOP)
    proc = run_cli("run", path, "--mode", "spec")
    assert proc.returncode == 2 and "has no function dldoctor_spec()" in proc.stderr


def test_a_module_runs_as_python_dash_m_would(make_project, tmp_path):
    package = tmp_path / "trainer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(ARGPARSE.replace("        for i in range", "        opt.zero_grad()\n"
                                                      "        for i in range"))
    proc = run_cli("run", "-m", "trainer.main", "--select", "loop-gradients", "--format", "json", "--",
                   "--epochs", "5", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    report = json.loads(proc.stdout)
    assert report["reports"]["watched_loop"]["script"] == "-m trainer.main"
    assert report["reports"]["watched_loop"]["steps_watched"] > 0


def test_a_script_error_before_training_shows_its_own_frames(make_project):
    path = script(make_project, "def load():\n    raise FileNotFoundError('data/train.csv')\nload()\n")
    diagnosis = diagnose_file(path)
    [finding] = diagnosis.diagnoses
    assert finding.id == "entrypoint-error" and "FileNotFoundError" in finding.title
    assert any("train.py" in e and "load()" in e for e in finding.evidence)


def test_the_step_split_of_a_watched_loop_leaves_out_each_epochs_first_fetch():
    from dldoctor.api.read import split_watched
    from dldoctor.loading.script.record import WatchedLoop
    from dldoctor.probes.resources.monitor import StepMonitor

    monitor = StepMonitor(torch.device("cpu"))
    loop = WatchedLoop(script="train.py", argv=["train.py"], epoch_starts=[10])
    for i in range(1, 20):  # intervals ending at steps 1..19; step 10 starts the second epoch
        monitor.step(0.5 if i == 10 else 0.01, 0.03, 32)
        loop.monitored_steps.append(i)
    loop.resources = monitor.finish()
    split = split_watched(loop, min_steps=5)
    assert split.steps == 18 and split.source == "the script's own loop"
    assert split.wait_s == pytest.approx(0.01) and split.compute_s == pytest.approx(0.03)
    assert split.epoch_start_extra_s == pytest.approx(0.49)
    assert split_watched(loop, min_steps=19) is None


def test_a_loss_computed_by_hand_runs_the_loop_checks_and_says_what_to_write(make_project):
    """The loop can be watched but not rebuilt: the watched-loop checks run, the rest is
    reported as not checked (status incomplete), with the dldoctor_spec to write instead."""
    loop = HEALTHY_LOOP.replace("loss = crit(model(xb), yb)",
                                "loss = -(model(xb).log_softmax(1).gather(1, yb[:, None])).mean()")
    proc = run_cli("run", script(make_project, loop), "--format", "json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["status"] == "incomplete", proc.stderr
    (gap,) = [d for d in report["diagnoses"] if d["id"] == "check-incomplete"]
    assert "did not come from a torch loss function" in gap["title"]
    assert "def dldoctor_spec" in gap["fixes"][0]
    ran = {c["name"]: c["status"] for c in report["checks"]}
    assert all(ran[name] == "passed" for name in LOOP_CHECKS), ran


def test_step_values_wait_in_one_device_buffer_and_come_back_in_order():
    from dldoctor.loading.script.watch import DeviceScalars

    scalars = DeviceScalars(capacity=4)
    assert scalars.put([torch.tensor(1.5), torch.tensor(2.0, dtype=torch.bfloat16)]) == (0, 2)
    assert scalars.put([torch.tensor([3.0]).reshape(())]) == (2, 1)
    assert scalars.put([torch.tensor(4.0), torch.tensor(5.0)]) is None  # full: read first
    buffer = scalars.buffer
    assert scalars.read() == [1.5, 2.0, 3.0] and scalars.used == 0
    assert scalars.put([torch.tensor(float("nan"))]) == (0, 1) and scalars.buffer is buffer  # reused, not grown
    assert math.isnan(scalars.read()[0])


def test_gradients_reset_to_zeros_none_or_sparse_are_told_from_stale_ones():
    """``zero_grad(set_to_none=False)`` leaves zeros: reset; any non-zero or NaN value left: not reset. Told in one
    fused read, and for sparse gradients (``nn.Embedding(sparse=True)``) and mixed dtypes by their values."""
    from dldoctor.loading.script.watch import _all_reset

    dense = torch.zeros(3, requires_grad=True)
    half = torch.zeros(2, dtype=torch.float16, requires_grad=True)
    embedding = torch.nn.Embedding(5, 2, sparse=True)
    params = [dense, half, embedding.weight]
    assert _all_reset(params)  # no gradient yet
    embedding(torch.tensor([1, 3])).sum().backward()
    dense.grad, half.grad = torch.zeros(3), torch.zeros(2, dtype=torch.float16)
    assert not _all_reset(params)  # the embedding's sparse gradient holds ones
    embedding.weight.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.zeros(1, 2), (5, 2),
                                                     check_invariants=True)
    assert _all_reset(params)  # zeros everywhere
    half.grad[1] = 1e-4
    assert not _all_reset(params)
    half.grad.zero_()
    dense.grad[0] = math.nan
    assert not _all_reset(params)
    dense.grad.zero_()
    assert _all_reset([dense, half])  # the first tensor, then the others in one fused read
    half.grad[0] = math.nan
    assert not _all_reset([dense, half])


SPARSE_EMBEDDING = """
import torch
from torch import nn

torch.manual_seed(0)
tokens = torch.randint(0, 50, (512, 6))
labels = (tokens[:, 0] % 2).long()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tokens, labels), batch_size=32, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8, sparse=True)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.emb(x).mean(1))


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    for x, y in loader:
        opt.zero_grad(set_to_none=False)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
"""


def test_sparse_gradients_zeroed_in_place_are_watched_and_probed(make_project):
    """An ``nn.Embedding(sparse=True)`` whose gradients are zeroed in place: the watcher's reset test and the
    forward trace read the sparse gradient's values (both raised NotImplementedError before: the user's
    backward() failed inside the watcher, then the forward trace crashed the run)."""
    path = make_project(SPARSE_EMBEDDING, name="train.py", header="")
    diagnosis = diagnose_file(path)
    assert not [c.name for c in diagnosis.checks if c.status.value == "errored"]
    ran = {c.name: c.status.value for c in diagnosis.checks}
    assert ran["loop-gradients"] == "passed" and ran["forward-pass"] == "passed", ran
    assert not [f.id for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]


def _watch(train, steps: int):
    """``train()`` under a watcher (and its step monitor) for ``steps`` optimizer steps."""
    import contextlib

    from dldoctor.loading.script.record import WatchedLoop
    from dldoctor.loading.script.watch import Budget, StopScript, Watcher
    from dldoctor.probes.resources.monitor import StepMonitor

    watcher = Watcher(WatchedLoop(script="t.py", argv=["t.py"]), Budget(min_steps=steps, max_steps=steps), (),
                      step_monitor=lambda device: StepMonitor(device, read_memory=False))
    with watcher, contextlib.suppress(StopScript):
        train()
    return watcher


@pytest.mark.parametrize("switch_at", [None, 21, 22, 23, 24])
def test_a_loop_that_stops_feeding_the_loaders_batches_as_they_come_is_seen_within_a_few_steps(switch_at):
    """Once its batches are kept, the watcher searches where the model's inputs came from on one step in
    DIRECT_EVERY only; a loop that starts passing a copy of the batch at any later step is still told from one
    that feeds the loader's batches as they come, and every step's sample count is right (the epoch's last,
    shorter batch included)."""
    from dldoctor.loading.script.watch import DIRECT_EVERY, KEPT_WHILE_DIRECT

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(200, 6), torch.randint(0, 3, (200,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)  # 13 batches, the last of 8
    model = torch.nn.Linear(6, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = 24 + DIRECT_EVERY
    assert steps > KEPT_WHILE_DIRECT + DIRECT_EVERY

    def train():
        step = 0
        for _ in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                inputs = x if switch_at is None or step < switch_at else x.clone()
                torch.nn.functional.cross_entropy(model(inputs), y).backward()
                optimizer.step()
                step += 1

    watcher = _watch(train, steps)
    assert len(watcher.record.steps) == steps
    assert watcher.direct is (switch_at is None)
    assert watcher.train_loader is loader
    sizes = [8 if i % 13 == 12 else 16 for i in range(steps)]
    monitored = watcher.record.monitored_steps
    assert list(watcher.record.resources.samples) == [sizes[i] for i in monitored]
