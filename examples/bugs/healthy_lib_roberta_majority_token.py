# EXPECT: healthy
"""RobertaForSequenceClassification from a tiny RobertaConfig (random init): which token is in the majority.

Each sentence `<s> ... </s>` holds filler words and a few copies of two special words, A and
B, never equally many (1-4 of each); the label says whether A outnumbers B. Sentences are
right-padded with RoBERTa's padding id 1. RoBERTa numbers positions from padding_idx + 1 and
gives padding the position padding_idx, so max_position_embeddings is the sequence length
plus 2, as in the released configs (514 for 512 tokens).

Why healthy: counting two words is within reach of two attention layers, the padding is
masked both by the attention mask and by RoBERTa's own position ids, and a plain loop with
AdamW climbs from 50% to well above it.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import RobertaConfig, RobertaForSequenceClassification

VOCAB, MAX_LEN = 64, 24
BOS, PAD, EOS, WORD_A, WORD_B = 0, 1, 2, 3, 4  # ids 5.. are filler


class MajoritySentences(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.full((n, MAX_LEN), PAD)
        self.mask = torch.zeros(n, MAX_LEN, dtype=torch.long)
        self.labels = torch.zeros(n, dtype=torch.long)
        for i in range(n):
            count_a, count_b = torch.randperm(4, generator=g)[:2] + 1  # two different counts in 1..4
            length = int(torch.randint(12, MAX_LEN + 1, (1,), generator=g))
            body = torch.randint(5, VOCAB, (length - 2,), generator=g)
            where = torch.randperm(length - 2, generator=g)
            body[where[:count_a]] = WORD_A
            body[where[count_a:count_a + count_b]] = WORD_B
            self.ids[i, 0], self.ids[i, length - 1] = BOS, EOS
            self.ids[i, 1:length - 1] = body
            self.mask[i, :length] = 1
            self.labels[i] = int(count_a > count_b)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "label": self.labels[i]}


def build_model(hidden=32):
    config = RobertaConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=2 * hidden, max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
                           pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, num_labels=2)
    return RobertaForSequenceClassification(config)


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["label"]


def dldoctor_spec(lr=1e-3, batch_size=32, hidden=32):
    return {
        "model": lambda: build_model(hidden),
        "train_loader": DataLoader(MajoritySentences(1500, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(MajoritySentences(300, 1), batch_size=150),
        "forward": forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
    }
