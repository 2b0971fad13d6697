"""A small CNN on scikit-learn's 8x8 digits, trained with DistributedDataParallel (or alone).

Under a launcher (``torchrun --nproc-per-node N``, which sets ``RANK`` and ``WORLD_SIZE``) every
rank joins a gloo group, wraps the model in ``DistributedDataParallel`` and reads its share of the
data through a shuffling ``DistributedSampler`` (``set_epoch`` each epoch), ``64 // world_size``
samples per step. Started plainly (no ``RANK``/``WORLD_SIZE``) it is the same training in one
process: no process group, no wrapper, a shuffling DataLoader with batches of 64. Used by
``benchmarks/distributed_cost.py``.

Usage: [torchrun --nproc-per-node 2] digits_ddp.py [--epochs 10] [--steps 0] [--timing-file PATH]

``--timing-file PATH``: time each optimizer step (the seconds between consecutive iterations
of the training loop: the batch, forward, backward and step) and have rank 0 write the list as
JSON to PATH when the loop ends, however it ends (dldoctor stops a watched script by raising
from inside ``optimizer.step()``: the file is written in a ``finally``). ``{world}`` in PATH
becomes the world size: a distributed ``dldoctor run`` also starts the script alone, with the
same arguments, for a couple of steps (``dldoctor.distributed.world_of_one``), and that run's
rank 0 must not overwrite the ranks' file.
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--steps", type=int, default=0, help="stop after this many optimizer steps (0: no limit)")
parser.add_argument("--timing-file", default=None,
                    help="rank 0 writes each step's seconds here (JSON; {world}: the world size)")
args = parser.parse_args()

distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
if distributed:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
else:
    rank, world = 0, 1

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
images = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
data = TensorDataset(images, torch.tensor(y, dtype=torch.long))
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    nn.Linear(32, 10),
)
if distributed:
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=64 // world, sampler=sampler)
    model = DistributedDataParallel(model)
else:
    sampler = None
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

step_seconds: list[float] = []
steps = 0
try:
    last = time.perf_counter()
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            steps += 1
            if args.timing_file:
                now = time.perf_counter()
                step_seconds.append(now - last)
                last = now
            if steps == args.steps:
                break
        if rank == 0:
            print(f"epoch {epoch}: loss {loss.item():.4f} ({steps} steps)")
        if steps == args.steps:
            break
finally:
    if args.timing_file and rank == 0:
        with open(args.timing_file.replace("{world}", str(world)), "w") as out:
            json.dump(step_seconds, out)
    if distributed:
        dist.destroy_process_group()
