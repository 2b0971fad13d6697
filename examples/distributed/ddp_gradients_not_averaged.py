# EXPECT: ddp-gradients-not-averaged
# NPROC: 2
"""Hand-rolled data parallelism that sums the gradients across ranks instead of averaging them.

The bug: instead of DistributedDataParallel the loop all_reduces every gradient itself with
ReduceOp.SUM and forgets to divide by the world size. The replicas stay identical (same seed, same
summed gradient on every rank), the loss falls, and nothing fails: the update is just world_size
times the one the learning rate was tuned for, so the effective learning rate silently changes
with the number of processes (2x here, 8x on a node of eight GPUs).
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 64
LR = 0.05
EPOCHS = 3
N_TRAIN = 768  # 12 steps an epoch on each of 2 ranks


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial weights on every rank

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
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
            for p in model.parameters():
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)  # no division by the world size
            optimizer.step()
            total += loss.item()
        if rank == 0:
            print(f"epoch {epoch + 1}: train loss {total / len(loader):.4f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
