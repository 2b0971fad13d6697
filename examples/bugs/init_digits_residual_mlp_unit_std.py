# EXPECT: bad-initialization
# A pre-LN residual MLP on scikit-learn's 8x8 digits whose init code was copied from a
# transformer but with std=1.0 where 0.02 was meant: nn.init.normal_(weight, 0.0, 1.0).
# Each branch multiplies its (normalised) input by gains of 8-16 per layer, so the first
# block's branch swamps the stream it is added to (the block's output and input
# correlate 0.05: the skip path no longer carries the signal), activations grow ~140x
# from the stem to the classifier, and the loss at init is ~1900 instead of ln(10).
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ResidualBlock(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    def __init__(self, d=64, hidden=256, blocks=3):
        super().__init__()
        self.stem = nn.Linear(64, d)
        self.blocks = nn.ModuleList(ResidualBlock(d, hidden) for _ in range(blocks))
        self.head = nn.Linear(d, 10)
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 1.0)
            nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-3):
    train, val = make_datasets()
    return {
        "model": ResidualMLP,
        "train_loader": DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
