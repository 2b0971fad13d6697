# EXPECT: healthy
# NPROC: 2
"""DDP with gradient accumulation: model.no_sync() on the first three of every four micro-batches.

Tempts `ddp-gradients-not-averaged` and `ddp-replicas-diverged`: inside no_sync() DDP skips its
gradient all_reduce, so after those backward() calls each rank holds only its own local gradient.
That is the point: the gradients accumulate locally and the fourth backward(), outside no_sync(),
all_reduces (averages) the accumulated sum once before the optimizer steps. The replicas stay
identical, and the global batch (16 per micro-batch x 4 micro-batches x 2 ranks = 128) is fixed
whatever the world size.
"""
import contextlib

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 128  # samples per optimizer step, over all ranks and micro-batches
ACCUM_STEPS = 4
LR = 0.1
EPOCHS = 3
N_TRAIN = 512  # 16 micro-batches (4 optimizer steps) an epoch on each of 2 ranks


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // (world * ACCUM_STEPS), sampler=sampler)

    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        model.train()
        optimizer.zero_grad()
        total = 0.0
        for i, (xb, yb) in enumerate(loader, start=1):
            sync_now = i % ACCUM_STEPS == 0
            with contextlib.nullcontext() if sync_now else model.no_sync():
                loss = criterion(model(xb), yb) / ACCUM_STEPS
                loss.backward()
            total += loss.item() * ACCUM_STEPS
            if sync_now:
                optimizer.step()
                optimizer.zero_grad()
        if rank == 0:
            print(f"epoch {epoch + 1}: train loss {total / len(loader):.4f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
