# EXPECT: healthy
# STAGES: run
# A small pre-LN transformer encoder (2 blocks, width 16, N(0, 0.02) weights as in
# BERT/GPT code) classifying synthetic "reviews" of 4-12 tokens, padded to 512 positions
# with token 0 and no attention mask (the pad positions are ordinary tokens to it). At
# init, attention is uniform, so each block's attention output is an average over 512
# positions that are mostly padding: inside the residual branch the spread falls ~1000x
# from the q/k/v inputs to the output projection's input. That is the branch, not the
# network: every block adds its small branch to a stream that keeps its scale (the block's
# output correlates 1.0 with its input), so the signal reaching the classifier is intact.
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH, POSITIVE = 64, 512, 7  # token 7 marks a positive review


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        n, t, d = x.shape
        y = self.ln1(x)
        q, k, v = (m(y).view(n, t, self.heads, d // self.heads).transpose(1, 2) for m in (self.q, self.k, self.v))
        x = x + self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Classifier(nn.Module):
    def __init__(self, d=16, heads=2, layers=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, d), nn.Embedding(LENGTH, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, 2)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x)[:, 0])


def make_dataset(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(n, LENGTH, dtype=torch.long)
    labels = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        length = int(torch.randint(4, 13, (1,), generator=g))
        words = torch.randint(8, VOCAB, (length,), generator=g)
        if labels[i]:
            words[int(torch.randint(0, length, (1,), generator=g))] = POSITIVE
        tokens[i, :length] = words
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=1e-3):
    return {
        "model": Classifier,
        "train_loader": DataLoader(make_dataset(), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_dataset(64, seed=1), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr),
    }
