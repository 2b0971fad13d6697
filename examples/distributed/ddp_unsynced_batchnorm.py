# EXPECT: ddp-unsynced-batchnorm
# NPROC: 2
"""A batch-norm CNN under DDP with 4 images per rank and plain BatchNorm2d.

The bug: the global batch of 8 is split into 4 images per rank, and each rank's BatchNorm2d
normalises with the mean and variance of its own 4 images. Those estimates are noisy and differ
from rank to rank, so training behaves like batch-4 training whatever the global batch is (and the
running statistics, broadcast from rank 0 by DDP, come from rank 0's slices alone). Nothing fails;
nn.SyncBatchNorm.convert_sync_batchnorm(model) computes the statistics over all ranks.
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 8  # 4 images per rank on 2 ranks
LR = 0.1
EPOCHS = 2
N_TRAIN = 640  # 80 steps an epoch on each of 2 ranks


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    model = DDP(make_cnn())  # plain BatchNorm2d: statistics per rank
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        model.train()
        total = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
        if rank == 0:
            print(f"epoch {epoch + 1}: train loss {total / len(loader):.4f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
