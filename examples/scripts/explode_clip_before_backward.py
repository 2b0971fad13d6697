# EXPECT: exploding-gradients
# ALSO: lr-too-high, numerical-instability
"""A vanilla tanh RNN that sums the last ten values of a 40-step noise sequence.

This setup (plain RNN, SGD with lr 0.05 and momentum) only trains because the
gradients are clipped to norm 1, but clip_grad_norm_() is called before
loss.backward(): at that point the gradients are still the zeros/None left by
zero_grad(), so it clips nothing, and backward() then writes the full, exploding
gradients that step() applies. The loss blows up in the first epoch, then turns NaN.
"""
import numpy as np
import torch
from torch import nn

SEQ_LEN, N_TRAIN, BATCH = 40, 2048, 64


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, SEQ_LEN, 1)).astype(np.float32)
    y = x[:, -10:, 0].sum(axis=1) / 3.0
    return torch.from_numpy(x), torch.from_numpy(y)


class Summer(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def train_one_epoch(model, x, y, optimizer, criterion, max_norm=1.0):
    model.train()
    perm = torch.randperm(len(x))
    losses = []
    for i in range(0, len(x), BATCH):
        idx = perm[i:i + BATCH]
        optimizer.zero_grad()
        loss = criterion(model(x[idx]), y[idx])
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


if __name__ == "__main__":
    torch.manual_seed(0)
    x_train, y_train = make_data(N_TRAIN, seed=0)
    x_val, y_val = make_data(512, seed=1)
    model = Summer()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.MSELoss()
    for epoch in range(8):
        train_loss = train_one_epoch(model, x_train, y_train, optimizer, criterion)
        model.eval()
        with torch.no_grad():
            val_loss = criterion(model(x_val), y_val).item()
        print(f"epoch {epoch}: train mse {train_loss:.4f}  val mse {val_loss:.4f}")
