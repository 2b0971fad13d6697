# EXPECT: healthy
# NPROC: 2
"""A Lightning MLP on the digits with Trainer(strategy="ddp", accelerator="cpu", devices=2).

Launched by torchrun, Lightning finds the ranks in the environment (its TorchElastic cluster
environment), joins the gloo process group instead of starting processes of its own, wraps the
module in DistributedDataParallel, swaps the DataLoader's sampler for a DistributedSampler and
calls set_epoch every epoch. Tempts every ddp-* check through the framework's code paths: no
DDP, no sampler and no collective in user code; the validation metric is synchronised with
sync_dist=True, which every rank calls. The per-rank batch is the global batch divided by the
trainer's world size.
"""
import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

GLOBAL_BATCH = 64
LR = 0.05
EPOCHS = 3


class DigitsMLP(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        X, y = load_digits(return_X_y=True)
        # A stratified random split (1,437 training images: 23 steps an epoch on each of 2 ranks).
        X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.2, random_state=0, stratify=y)
        self.train_set = TensorDataset(torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train))
        self.val_set = TensorDataset(torch.tensor(X_val, dtype=torch.float32), torch.tensor(y_val))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=GLOBAL_BATCH // self.trainer.world_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)


if __name__ == "__main__":
    L.seed_everything(0)
    trainer = L.Trainer(
        strategy="ddp",
        accelerator="cpu",
        devices=2,
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = DigitsMLP()
    trainer.fit(model)
    if trainer.global_rank == 0:
        print(f"steps {trainer.global_step}  val acc {trainer.callback_metrics['val_acc'].item():.4f}")
