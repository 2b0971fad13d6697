"""In each rank of a torchrun group: the digits CNN's DDP steps in alternating blocks, plain and watched.

The watched blocks run under what dldoctor installs in a rank (``dldoctor.loading.script.execute``): a
:class:`~dldoctor.loading.script.watch.Watcher` with its step monitor, the rank's recorder
(:class:`~dldoctor.distributed.rank_record.RankProbe`, probed steps included: each block restarts its
step count, as a run's watch starts at its first step) and the hang watchdog thread reading the rank's
stack. The same processes, model and data run both kinds of block, so what differs between them is the
watching alone (process placement, start-up and the launcher are the same for both). Like a dldoctor
rank, the group runs with torch's flight recorder off (``execute.quiet_flight_recorder``): left on, its
ring buffer fragments the heap step by step, and the watcher's memory reads (glibc's ``mallinfo2``
walks the free chunks) grow 3-10x dearer over the blocks than they are in a dldoctor rank. Rank 0
writes each block's step times (wall seconds, and the main thread's CPU seconds) as JSON. Used by
``benchmarks/distributed_cost.py``.

Usage: torchrun --nproc-per-node 2 ab_ranks.py --blocks 30 --block-steps 40 [--per-rank-batch 32] [--callgrind]
       --out PATH
"""
import argparse
import functools
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from dldoctor.distributed import rank_env
from dldoctor.distributed.exchange import exchange_for
from dldoctor.distributed.rank_record import RankProbe
from dldoctor.distributed.watchdog import Watchdog
from dldoctor.loading.script.execute import quiet_flight_recorder
from dldoctor.loading.script.record import WatchedLoop
from dldoctor.loading.script.watch import Budget, Watcher
from dldoctor.probes.resources.monitor import StepMonitor

parser = argparse.ArgumentParser()
parser.add_argument("--blocks", type=int, default=10)
parser.add_argument("--block-steps", type=int, default=60)
parser.add_argument("--per-rank-batch", type=int, default=32)
parser.add_argument("--out", required=True)
parser.add_argument("--callgrind", action="store_true",
                    help="run under valgrind's callgrind (distributed_cost.py --instructions): instrumentation on "
                         "after the warm-up, counts zeroed before each block (getppid) and dumped after it (getpgrp)")
args = parser.parse_args()

quiet_flight_recorder()  # as in a dldoctor rank (the same for both kinds of block: one process group)
dist.init_process_group("gloo")
env = rank_env()
assert env is not None, "run me under torchrun with 2 or more ranks"
torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
data = TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(y, dtype=torch.long))
sampler = DistributedSampler(data, shuffle=True, seed=0)
loader = DataLoader(data, batch_size=args.per_rank_batch, sampler=sampler)
model = DistributedDataParallel(nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
NEVER = Budget(min_steps=10**9, max_steps=10**9, after_boundary=0, max_backwards=10**9)
exchange = exchange_for(env)
epochs = [0]  # epochs begun so far (each block starts a new one)


def steps(n: int) -> tuple[list[float], list[float]]:
    """``n`` steps: each one's wall seconds, and the CPU seconds of this (the main) thread in it."""
    times, cpu, last, last_cpu, done = [], [], time.perf_counter(), time.thread_time(), 0
    while done < n:
        sampler.set_epoch(epochs[0])
        epochs[0] += 1
        for images, labels in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            now, now_cpu = time.perf_counter(), time.thread_time()
            times.append(now - last)
            cpu.append(now_cpu - last_cpu)
            last, last_cpu = now, now_cpu
            done += 1
            if done == n:
                break
    return times, cpu


def watched(n: int) -> tuple[list[float], list[float]]:
    record = WatchedLoop(script=__file__, argv=[__file__])
    follower = not env.leader  # as dldoctor's other ranks (core.runner.watch_rank): no memory reads
    watcher = Watcher(record, NEVER, (Path(__file__).resolve().parent,),
                      step_monitor=functools.partial(StepMonitor, read_memory=not follower))
    watcher.follower = follower
    watcher.rank_probe = RankProbe(env)
    dog = Watchdog(env, exchange.store, exchange.prefix + "bench/", 20.0, (Path(__file__).resolve().parent,),
                   lambda verdict: None, lambda: None).start() if exchange.store is not None else None
    try:
        with watcher:
            return steps(n)
    finally:
        if dog is not None:
            dog.stop()
        watcher.rank_probe.close()


steps(20)  # warm-up, neither kind
if args.callgrind:
    Path(f"{args.out}.rank{env.rank}").write_text(str(os.getpid()))  # which dump files are this rank's
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    steps(2)  # callgrind switches its instrumentation on at its next check
blocks = []
for b in range(args.blocks):
    order = ("plain", "watched") if b % 2 == 0 else ("watched", "plain")
    for kind in order:
        # A finished block's watcher sits in reference cycles until the collector runs: collected here, between
        # blocks, or its memory is freed at some later step and fragments the heap block after block (glibc's
        # free chunks grew 430 -> 1310 over 20 watched blocks, 510 flat with this), which a dldoctor rank, with
        # one watcher, never sees, and which makes every later block's memory reads dearer.
        gc.collect()
        if args.callgrind:
            os.getppid()  # callgrind zeroes its counts here (--zero-before=getppid)
        times, cpu = watched(args.block_steps) if kind == "watched" else steps(args.block_steps)
        if args.callgrind:
            os.getpgrp()  # and dumps this block's (--dump-before=getpgrp): one numbered file per block
        blocks.append({"kind": kind, "pair": b, "times": times, "cpu": cpu})
if env.leader:
    Path(args.out).write_text(json.dumps(blocks))
dist.destroy_process_group()
