# EXPECT: healthy
"""GPT2LMHeadModel from a tiny GPT2Config (random init) as a next-token language model.

Each sequence counts through the vocabulary with its own start and stride
(start, start+k, start+2k, ... modulo 60, k in 1..3); 8% of the tokens are replaced by
random ones. Lengths vary from 10 to 32, so the batch is right-padded; the targets are
the inputs shifted by one with padding positions set to -100, the index
CrossEntropyLoss ignores (and the value Hugging Face data collators use for "no label").

Why healthy: after two tokens the stride is known and the rest is predictable up to the
noise, so token accuracy climbs far above chance (1/60) in a plain loop; GPT-2's
defaults (pre-LayerNorm, tied input/output embeddings, scaled residual init) are the
standard recipe. About a third of the target positions are -100 padding.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import GPT2Config, GPT2LMHeadModel

WORDS, MAX_LEN = 60, 32
PAD = WORDS  # one extra id for padding: the vocabulary is 61
VOCAB = WORDS + 1
IGNORE = -100


def make_data(n, seed, noise=0.08):
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, WORDS, (n, 1), generator=g)
    stride = torch.randint(1, 4, (n, 1), generator=g)
    tokens = (start + stride * torch.arange(MAX_LEN)) % WORDS
    flip = torch.rand(n, MAX_LEN, generator=g) < noise
    tokens = torch.where(flip, torch.randint(0, WORDS, (n, MAX_LEN), generator=g), tokens)
    lengths = torch.randint(10, MAX_LEN + 1, (n, 1), generator=g)
    mask = (torch.arange(MAX_LEN) < lengths).long()
    tokens = torch.where(mask.bool(), tokens, torch.full_like(tokens, PAD))
    return TensorDataset(tokens, mask)


def build_model(n_embd=48):
    config = GPT2Config(vocab_size=VOCAB, n_positions=MAX_LEN, n_embd=n_embd, n_layer=2, n_head=2,
                        bos_token_id=PAD, eos_token_id=PAD, pad_token_id=PAD)
    return GPT2LMHeadModel(config)


def lm_forward(model, batch):
    tokens, mask = batch
    logits = model(input_ids=tokens[:, :-1], attention_mask=mask[:, :-1]).logits
    targets = tokens[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
    return logits.reshape(-1, VOCAB), targets.reshape(-1)


def dldoctor_spec(lr=2e-3, batch_size=32, n_embd=48):
    return {
        "model": lambda: build_model(n_embd),
        "train_loader": DataLoader(make_data(1024, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(256, 1), batch_size=128),
        "forward": lm_forward,
        "loss_fn": nn.CrossEntropyLoss(ignore_index=IGNORE),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        "num_classes": VOCAB,
    }
