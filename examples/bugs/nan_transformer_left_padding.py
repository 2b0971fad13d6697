# EXPECT: numerical-instability
# A small decoder-style Transformer with hand-written causal attention that classifies left-padded token sequences.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE, MAX_LEN, PAD = 64, 16, 0


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, nhead):
        super().__init__()
        self.nhead = nhead
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, pad_mask):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.nhead, D // self.nhead).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // self.nhead)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal | pad_mask[:, None, None, :], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class TinyDecoder(nn.Module):
    def __init__(self, d_model=64, nhead=4, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos = nn.Parameter(torch.randn(MAX_LEN, d_model) * 0.02)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, nhead)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos
        x = x + self.attn(self.norm1(x), tokens == PAD)
        x = x + self.mlp(self.norm2(x))
        return self.head(x[:, -1])


def make_dataset(n=512):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, VOCAB_SIZE, (n, MAX_LEN), generator=g)
    lengths = torch.randint(4, MAX_LEN + 1, (n, 1), generator=g)
    tokens = tokens * (torch.arange(MAX_LEN).flip(0) < lengths)  # left padding
    labels = (tokens == 7).any(dim=1).long()
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=3e-4, batch_size=32):
    return {
        "model": TinyDecoder,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for tokens, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(tokens), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
