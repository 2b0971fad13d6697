# EXPECT: healthy
"""A two-layer LSTM language model with tied input/output embeddings on repeating motifs.

Each sequence of 32 tokens repeats a random motif of 3 to 5 tokens over and over (a new
motif per sequence); 5% of the tokens are then replaced by random ones. Next-token
prediction: once a motif has gone by once, the rest of the sequence is predictable except
for the noise. The decoder shares its weight matrix with the embedding (Press & Wolf), so
the embedding size equals the LSTM's hidden size; dropout between and after the layers.

Why healthy: copying a period back is what LSTMs do well; a plain loop with Adam and
gradient clipping brings token accuracy from ~1/40 to far above chance.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH = 40, 32


def make_data(n, seed, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        period = int(torch.randint(3, 6, (1,), generator=g))
        motif = torch.randint(0, VOCAB, (period,), generator=g)
        rows.append(motif.repeat(LENGTH // period + 1)[:LENGTH])
    tokens = torch.stack(rows)
    flip = torch.rand(n, LENGTH, generator=g) < noise
    tokens = torch.where(flip, torch.randint(0, VOCAB, (n, LENGTH), generator=g), tokens)
    return TensorDataset(tokens)


class TiedLSTM(nn.Module):
    def __init__(self, hidden=64, dropout=0.2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, hidden)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(hidden, VOCAB)
        self.decoder.weight = self.embed.weight  # weight tying
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens):
        out, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.decoder(self.drop(out))


def lm_forward(model, batch):
    (tokens,) = batch
    logits = model(tokens[:, :-1])
    return logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1)


def dldoctor_spec(lr=1e-2, batch_size=32, hidden=64):
    return {
        "model": lambda: TiedLSTM(hidden),
        "train_loader": DataLoader(make_data(2048, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(256, 1), batch_size=128),
        "forward": lm_forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "grad_clip_norm": 1.0,
        "num_classes": VOCAB,
    }
