# EXPECT: healthy
# NPROC: 2
"""The batch-norm CNN of ddp_unsynced_batchnorm.py, 4 images per rank, with synchronised batch norm.

Tempts `ddp-unsynced-batchnorm`: each rank's batch-norm layers see only 4 images a step, but every
layer normalises with the mean and variance of the whole global batch of 8 (the per-channel sums
are all_reduced across ranks, and so are their gradients in backward). On a GPU that is
nn.SyncBatchNorm.convert_sync_batchnorm(model); torch's SyncBatchNorm runs on GPUs only (and DDP
refuses it in a CPU module), so on CPU with gloo the layers are converted to CPUSyncBatchNorm below:
the same maths in a few lines, on a process group of its own.
"""
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

GLOBAL_BATCH = 8  # 4 images per rank on 2 ranks
LR = 0.1
EPOCHS = 2
N_TRAIN = 640  # 80 steps an epoch on each of 2 ranks


class AllReduceSum(torch.autograd.Function):
    """Sum a tensor over the ranks of a group; the gradient is summed over the ranks too."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        total = tensor.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm over the global batch for CPU tensors: per-channel sums all_reduced over the group."""

    def __init__(self, bn, group):
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        self.load_state_dict(bn.state_dict())
        self.group = group

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x):
        if not self.training:
            return super().forward(x)  # evaluation: the running statistics, nothing to synchronise
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = x.new_tensor([x.numel() // channels])
        sums = AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]), self.group)
        n = sums[-1]
        mean = sums[:channels] / n
        var = (sums[channels:2 * channels] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1), self.momentum)
        shape = (1, channels) + (1,) * (x.dim() - 2)
        out = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out


def convert_sync_batchnorm(module, group):
    """nn.SyncBatchNorm.convert_sync_batchnorm for a GPU model; CPUSyncBatchNorm layers for a CPU one."""
    if next(module.parameters()).is_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=group)
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, _BatchNorm):
                setattr(parent, name, CPUSyncBatchNorm(child, group))
    return module


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

    bn_group = dist.new_group()  # the batch-norm all_reduces never interleave with DDP's
    model = DDP(convert_sync_batchnorm(make_cnn(), bn_group))
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
    model.eval()  # eval mode normalises with the running statistics: no synchronisation
    with torch.no_grad():
        val_acc = (model.module(X[N_TRAIN:]).argmax(1) == y[N_TRAIN:]).float().mean().item()
    if rank == 0:
        print(f"val acc {val_acc:.3f}")

    dist.destroy_process_group()


if __name__ == "__main__":
    main()
