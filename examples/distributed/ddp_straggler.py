# EXPECT: ddp-straggler
# NPROC: 2
"""DDP where rank 1 loads its samples slowly, so every synchronised step waits for rank 1.

The bug: the data set reads one sample at a time (as a folder of image files would), and rank 1's
copy sits on slow storage: here its per-sample read takes 3 ms (simulated with a sleep on that
rank only) against nothing on rank 0. DDP's gradient all_reduce completes only when every rank
reaches it, so rank 0 spends most of each step waiting inside backward() and the whole job runs at
rank 1's pace. Nothing fails and the loss falls; the job is just several times slower than one
process would be.
"""
import os
import time

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, DistributedSampler

GLOBAL_BATCH = 64
LR = 0.05
EPOCHS = 3
N_TRAIN = 768  # 12 steps an epoch on each of 2 ranks


class DigitsFiles(Dataset):
    """One digit per read; `read_seconds` is the storage latency of one read."""

    def __init__(self, X, y, read_seconds):
        self.X, self.y, self.read_seconds = X, y, read_seconds

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.read_seconds:
            time.sleep(self.read_seconds)
        return self.X[i], self.y[i]


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    slow_storage = int(os.environ.get("LOCAL_RANK", "0")) == 1
    train_ds = DigitsFiles(X[:N_TRAIN], y[:N_TRAIN], read_seconds=0.003 if slow_storage else 0.0)
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        model.train()
        start = time.perf_counter()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}  {time.perf_counter() - start:.2f} s")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
