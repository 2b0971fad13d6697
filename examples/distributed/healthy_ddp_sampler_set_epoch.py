# EXPECT: healthy
# NPROC: 2
"""DDP on the digits MLP with a DistributedSampler that is told the epoch: the reference setup.

Tempts every ddp-* check and should trip none: the model is wrapped in DistributedDataParallel
(identical replicas, averaged gradients), the DistributedSampler gives each rank its own half of
the data and sampler.set_epoch(epoch) reshuffles it every epoch, the per-rank batch is the global
batch divided by the world size (the learning rate was tuned for that global batch), and the
epoch-end evaluation calls its all_reduce on every rank.
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 64  # the batch the learning rate was tuned for, whatever the number of processes
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
    X_val, y_val = X[N_TRAIN:][rank::world], y[N_TRAIN:][rank::world]  # each rank scores its share

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
        model.eval()
        with torch.no_grad():
            correct = (model.module(X_val).argmax(1) == y_val).sum().float()
        totals = torch.stack([correct, torch.tensor(float(len(y_val)))])
        dist.all_reduce(totals)  # every rank takes part
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}  val acc {(totals[0] / totals[1]).item():.3f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
