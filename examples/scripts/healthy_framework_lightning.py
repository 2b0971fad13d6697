# EXPECT: healthy
"""A Lightning MLP on scikit-learn's digits: the framework owns the loop.

Tempts: no optimizer.step/backward/zero_grad in user code (Lightning calls step(closure) with
forward and backward inside it), train()/eval() switched by the Trainer around validation (and its
sanity-check pass before the first step), and the loss returned from training_step, never .backward()ed.
"""
import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class DigitsMLP(L.LightningModule):
    def __init__(self, hidden=64, lr=3e-3):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Linear(64, hidden), nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def make_loaders(batch_size=64):
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0  # pixel intensities 0..16 -> [0, 1]
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    train = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train).long())
    val = TensorDataset(torch.from_numpy(X_val), torch.from_numpy(y_val).long())
    return (DataLoader(train, batch_size=batch_size, shuffle=True),
            DataLoader(val, batch_size=256))


if __name__ == "__main__":
    L.seed_everything(0)
    train_loader, val_loader = make_loaders()
    model = DigitsMLP()
    trainer = L.Trainer(
        max_epochs=10,  # 23 steps an epoch: 230 optimizer steps
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train_loader, val_loader)
    print(f"steps {trainer.global_step}  val_accuracy {trainer.callback_metrics['val_acc'].item():.4f}")
