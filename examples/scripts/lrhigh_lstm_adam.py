# EXPECT: lr-too-high
"""An LSTM that reads 30-step, 3-channel noise sequences and predicts a 4-way label
(the signs of the sums of two channels).

The loop is fine, but Adam runs with lr=0.3, about 100x the usual 1e-3..3e-3 for an
LSTM: every update overshoots, the gate weights saturate, and the loss rises above its
starting value and then hovers around chance (ln 4 = 1.386) instead of falling.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

config = {"hidden": 64, "lr": 0.3, "batch_size": 100, "epochs": 6, "seq_len": 30}


def make_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, config["seq_len"], 3, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long() + 2 * (x[:, :, 1].sum(1) > 0).long()
    return TensorDataset(x, y)


class SeqClassifier(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.lstm = nn.LSTM(3, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, 4)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.classifier(out[:, -1])


torch.manual_seed(0)
train_loader = DataLoader(make_split(4000, seed=0), batch_size=config["batch_size"], shuffle=True)
val_x, val_y = make_split(1000, seed=1).tensors

model = SeqClassifier(config["hidden"])
optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])

for epoch in range(config["epochs"]):
    model.train()
    total = 0.0
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        val_acc = (model(val_x).argmax(1) == val_y).float().mean().item()
    print(f"Epoch {epoch + 1}/{config['epochs']} - loss: {total / len(train_loader):.4f} - val_acc: {val_acc:.4f}")
