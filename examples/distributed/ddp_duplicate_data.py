# EXPECT: ddp-duplicate-data
# NPROC: 2
"""DDP on the digits MLP fed by a plain shuffling DataLoader: every rank reads the same batches.

The bug: the single-process DataLoader(shuffle=True) was kept when the script moved to torchrun.
Every rank seeds torch identically (torch.manual_seed(0), as reproducible scripts do), so every
rank's RandomSampler draws the same permutation and the ranks train on identical batches. DDP
averages two identical gradients, so nothing looks wrong: the loss falls as it would on one
process, only each epoch costs two processes the work of one (and an "epoch" is the whole data set
on every rank). The fix is a DistributedSampler (with set_epoch).
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset

GLOBAL_BATCH = 64
LR = 0.05
EPOCHS = 2
N_TRAIN = 640  # 20 steps an epoch on every rank (each reads all of it)


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, shuffle=True)  # no DistributedSampler

    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    for epoch in range(EPOCHS):
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
