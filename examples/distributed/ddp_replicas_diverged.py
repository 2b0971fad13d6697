# EXPECT: ddp-replicas-diverged
# NPROC: 2
"""Hand-rolled data parallelism that averages gradients but never makes the replicas equal.

The bug: each rank seeds torch with its rank (meant to give each rank its own dropout masks) and
only then builds the model, so every rank starts from different random weights. The model is not
wrapped in DistributedDataParallel, which would have broadcast rank 0's weights at construction;
the loop averages the gradients itself (all_reduce, then divide by the world size: that part is
right), so each replica takes the same averaged step from a different starting point and the
replicas never meet. Every rank prints a falling loss; each rank evaluates and would save a
different model.
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
    torch.manual_seed(rank)  # "different dropout on every rank", set before the model is built

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_ds = TensorDataset(X[:N_TRAIN], y[:N_TRAIN])
    sampler = DistributedSampler(train_ds, shuffle=True, seed=0)
    loader = DataLoader(train_ds, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
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
            for p in model.parameters():  # average the gradients across ranks
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad /= world
            optimizer.step()
            total += loss.item()
        print(f"rank {rank} epoch {epoch + 1}: train loss {total / len(loader):.4f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
