# EXPECT: healthy
# A one-block decoder-only Transformer with hand-written causal attention, trained as a next-token model.
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE, SEQ_LEN = 40, 25


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, nhead):
        super().__init__()
        self.nhead = nhead
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.nhead, D // self.nhead).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // self.nhead)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        weights = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(B, T, D))


class TinyLM(nn.Module):
    def __init__(self, d_model=64, nhead=4):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos = nn.Parameter(torch.randn(SEQ_LEN, d_model) * 0.02)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, nhead)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.out = nn.Linear(d_model, VOCAB_SIZE)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.out(x)


def make_dataset(n=512):
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB_SIZE, (n, 1), generator=g)
    step = torch.randint(1, 4, (n, 1), generator=g)
    return TensorDataset((start + step * torch.arange(SEQ_LEN)) % VOCAB_SIZE)


def lm_forward(model, batch):
    (tokens,) = batch
    return model(tokens[:, :-1]).reshape(-1, VOCAB_SIZE), tokens[:, 1:].reshape(-1)


def dldoctor_spec(lr=3e-3, batch_size=32):
    return {
        "model": TinyLM,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        "forward": lm_forward,
        "num_classes": VOCAB_SIZE,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](*lm_forward(model, batch))
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
