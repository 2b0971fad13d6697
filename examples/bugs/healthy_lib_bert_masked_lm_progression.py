# EXPECT: healthy
"""BertForMaskedLM from a tiny BertConfig (random init), trained with the usual 15% masking.

Each sequence of 20 tokens counts through 50 words with its own start and stride
(stride 1..3, modulo 50). 15% of the positions are chosen for prediction (at least one
per sequence); of those, 80% are replaced by [MASK], 10% by a random word and 10% kept,
BERT's recipe. The targets are the original tokens at the chosen positions and -100
everywhere else, the index CrossEntropyLoss ignores, so about 85% of target positions
are -100. Masking is drawn once per example when the data set is built, so every pass
sees the same masks.

Why healthy: a masked token is fixed by its neighbours (the stride is visible on either
side), and a plain loop brings accuracy on the predicted positions from ~1/50 to far
above chance. The spec's forward feeds input_ids and takes `.logits`, flattened to
(tokens, vocabulary) as Hugging Face's own masked-LM loss does.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForMaskedLM

WORDS, LENGTH = 50, 20
MASK, PAD = WORDS, WORDS + 1  # two extra ids (no sequence is padded): the vocabulary is 52
VOCAB = WORDS + 2
IGNORE = -100


def make_data(n, seed, rate=0.15):
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, WORDS, (n, 1), generator=g)
    stride = torch.randint(1, 4, (n, 1), generator=g)
    original = (start + stride * torch.arange(LENGTH)) % WORDS
    chosen = torch.rand(n, LENGTH, generator=g) < rate
    chosen[torch.arange(n), torch.randint(0, LENGTH, (n,), generator=g)] = True
    roll = torch.rand(n, LENGTH, generator=g)
    inputs = original.clone()
    inputs[chosen & (roll < 0.8)] = MASK
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = torch.randint(0, WORDS, (int(swap.sum()),), generator=g)
    targets = original.masked_fill(~chosen, IGNORE)
    return TensorDataset(inputs, targets)


def build_model(hidden=48):
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=LENGTH, pad_token_id=PAD)
    return BertForMaskedLM(config)


def mlm_forward(model, batch):
    inputs, targets = batch
    logits = model(input_ids=inputs).logits
    return logits.reshape(-1, VOCAB), targets.reshape(-1)


def dldoctor_spec(lr=2e-3, batch_size=32, hidden=48):
    return {
        "model": lambda: build_model(hidden),
        "train_loader": DataLoader(make_data(2048, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(256, 1), batch_size=128),
        "forward": mlm_forward,
        "loss_fn": nn.CrossEntropyLoss(ignore_index=IGNORE),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        "num_classes": VOCAB,
    }
