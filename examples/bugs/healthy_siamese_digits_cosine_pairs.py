# EXPECT: healthy
# STAGES: run
# A siamese network on scikit-learn's digits: one shared MLP embeds both images of a pair,
# and the pair's logit is 10 x the cosine similarity of the two embeddings plus a learnt
# offset ("same digit" = 1, BCE with logits; the fixed scale 10 is the usual inverse
# temperature). With PyTorch's default init the non-negative ReLU embeddings of any two
# digits point roughly the same way, so most pairs start at large positive logits (rms
# ~6) and the loss at init is 2.2 nats, far above ln 2 = 0.69. That is the architecture,
# not the weights: re-initialising with PyTorch's defaults gives the same loss, and
# training fixes it within an epoch.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class Siamese(nn.Module):
    def __init__(self, hidden=64, dim=32, scale=10.0):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.ReLU())
        self.offset = nn.Parameter(torch.zeros(1))
        self.scale = scale

    def forward(self, pair):
        a, b = self.embed(pair[:, 0]), self.embed(pair[:, 1])
        return self.scale * F.cosine_similarity(a, b, dim=1) + self.offset


def make_pairs(n=1024, seed=0):
    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-6), dtype=torch.float32)
    y = torch.tensor(y)
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, len(y), (n,), generator=g)
    same = torch.rand(n, generator=g) < 0.5
    second = torch.randint(0, len(y), (n,), generator=g)
    for i in torch.nonzero(same).flatten().tolist():  # a partner of the same digit
        candidates = torch.nonzero(y == y[first[i]]).flatten()
        second[i] = candidates[torch.randint(0, len(candidates), (1,), generator=g)]
    pairs = torch.stack([X[first], X[second]], dim=1)
    return TensorDataset(pairs, (y[first] == y[second]).float())


def dldoctor_spec(lr=1e-3):
    return {
        "model": Siamese,
        "train_loader": DataLoader(make_pairs(), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_pairs(256, seed=1), batch_size=128),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
