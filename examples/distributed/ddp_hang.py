# EXPECT: ddp-hang
# NPROC: 2
"""DDP with an epoch-end barrier that only rank 0 reaches: the job hangs after the first epoch.

The bug: rank 0 evaluates the model at the end of each epoch and then calls dist.barrier() "so the
other ranks wait for the evaluation", but the barrier is indented inside the `if rank == 0:`
branch. Rank 1 never calls it: it starts the next epoch and waits in DDP's gradient all_reduce of
its first backward(), while rank 0 waits in the barrier. Each rank waits at a different collective,
neither can finish, and torch prints nothing until the process group's timeout (30 minutes by
default). Under plain torchrun this script hangs about a second into training.
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 64
LR = 0.05
EPOCHS = 3
N_TRAIN = 768  # 12 steps an epoch on each of 2 ranks


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    X_val, y_val = X[N_TRAIN:], y[N_TRAIN:]
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
        if rank == 0:
            model.eval()
            with torch.no_grad():
                val_acc = (model.module(X_val).argmax(1) == y_val).float().mean().item()
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}  val acc {val_acc:.3f}", flush=True)
            dist.barrier()  # meant for every rank, reached by rank 0 only

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
