# EXPECT: ddp-scaling-mismatch
# NPROC: 2
"""A single-process recipe moved to torchrun unchanged: the global batch doubles, the lr does not.

The bug: BATCH_SIZE and LR were tuned together on one process (64 samples a step at lr 0.1). Under
torchrun each rank still loads 64 samples a step, so the global batch is 64 x world_size (128 on 2
ranks) while the learning rate stays the one tuned for 64. An epoch now takes half as many steps
of the same size, so the run trains less per epoch than the single-process recipe; nothing fails.
Either keep the global batch (per-rank batch = 64 // world_size) or scale the learning rate with it
(lr = 0.1 x world_size, with a warm-up). The healthy scripts next to it keep the global batch.
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

BATCH_SIZE = 64  # tuned on one process, together with LR
LR = 0.1
EPOCHS = 3
N_TRAIN = 1536  # 12 steps an epoch on each of 2 ranks


def main():
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=BATCH_SIZE, sampler=sampler)  # per rank: global = 64 x world

    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)  # not scaled with the batch

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
