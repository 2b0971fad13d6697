# EXPECT: healthy
# STAGES: run
# A residual MLP on scikit-learn's wine measurements (standardised): a linear stem, then 4
# pre-LN residual blocks x + f(LayerNorm(x)) whose branch f is a 4-layer GELU MLP, all
# weights drawn from N(0, 0.02) as transformer code does. Inside each branch the spread
# shrinks ~3000x from its first layer's input to its last layer's input (gains 0.06-0.16
# per layer): the branch starts as a near-zero correction. The stream does not shrink:
# each block's output correlates 1.0 with its input (the skip path carries it), and the
# classifier receives the stem's signal intact. Multiplying the branch's gains as if the
# layers were in series would call this a vanishing signal.
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ResidualBlock(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.branch = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                    nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x):
        return x + self.branch(self.norm(x))


class ResidualMLP(nn.Module):
    def __init__(self, d=32, hidden=64, blocks=4):
        super().__init__()
        self.stem = nn.Linear(13, d)
        self.blocks = nn.Sequential(*(ResidualBlock(d, hidden) for _ in range(blocks)))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 3)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.norm(self.blocks(self.stem(x))))


def make_datasets():
    X, y = load_wine(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = X_tr.mean(0), X_tr.std(0)
    def to_ds(X, y):
        return TensorDataset(torch.tensor((X - mean) / std, dtype=torch.float32), torch.tensor(y))
    return to_ds(X_tr, y_tr), to_ds(X_va, y_va)


def dldoctor_spec(lr=1e-3):
    train, val = make_datasets()
    return {
        "model": ResidualMLP,
        "train_loader": DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr),
    }
