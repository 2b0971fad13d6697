"""In each rank of a torchrun group: the digits CNN's DDP steps in alternating blocks, plain and watched.

The watched blocks run under what dldoctor installs in a rank (``dldoctor.loading.script.execute``): a
:class:`~dldoctor.loading.script.watch.Watcher` with its step monitor, the rank's recorder
(:class:`~dldoctor.distributed.rank_record.RankProbe`, probed steps included: each block restarts its
step count) and the hang watchdog thread reading the rank's stack and writing to the launcher's store.
The same processes, model and data run both kinds of block, so what differs between them is the
watching alone (process placement, start-up and the launcher are the same for both). Rank 0 writes
each block's step times as JSON. Used by ``benchmarks/distributed_cost.py`` (``--in-process``).

Usage: torchrun --nproc-per-node 2 ab_ranks.py --blocks 30 --block-steps 30 [--per-rank-batch 32] --out PATH
"""
import argparse
import json
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
from dldoctor.loading.script.record import WatchedLoop
from dldoctor.loading.script.watch import Budget, Watcher
from dldoctor.probes.resources.monitor import StepMonitor

parser = argparse.ArgumentParser()
parser.add_argument("--blocks", type=int, default=10)
parser.add_argument("--block-steps", type=int, default=60)
parser.add_argument("--per-rank-batch", type=int, default=32)
parser.add_argument("--out", required=True)
args = parser.parse_args()

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


def steps(n: int) -> list[float]:
    times, last, done = [], time.perf_counter(), 0
    while done < n:
        sampler.set_epoch(epochs[0])
        epochs[0] += 1
        for images, labels in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            now = time.perf_counter()
            times.append(now - last)
            last = now
            done += 1
            if done == n:
                break
    return times


def watched(n: int) -> list[float]:
    record = WatchedLoop(script=__file__, argv=[__file__])
    watcher = Watcher(record, NEVER, (Path(__file__).resolve().parent,), step_monitor=StepMonitor)
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
blocks = []
for b in range(args.blocks):
    order = ("plain", "watched") if b % 2 == 0 else ("watched", "plain")
    for kind in order:
        times = watched(args.block_steps) if kind == "watched" else steps(args.block_steps)
        blocks.append({"kind": kind, "pair": b, "times": times})
if env.leader:
    Path(args.out).write_text(json.dumps(blocks))
dist.destroy_process_group()
