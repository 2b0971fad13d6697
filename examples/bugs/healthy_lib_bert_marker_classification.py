# EXPECT: healthy
"""BertForSequenceClassification, built from a tiny BertConfig with random weights, on a marker rule.

Each example is `[CLS] tokens... [SEP]` of random length, right-padded to 24 with an attention
mask; the label says whether a special marker token occurs anywhere in the sentence. The
[CLS] representation must gather one token from anywhere in the sequence, which two
attention layers do easily. AdamW with a short linear warm-up, the usual BERT recipe.

Why healthy: the Hugging Face defaults (normal(0, 0.02) weights, post-LayerNorm residual
blocks, dropout 0.1) train this from scratch; a plain loop reaches well above chance
(50%) in a few hundred steps. The spec's forward passes input_ids and the attention mask
and takes `.logits` out of the returned ModelOutput.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # built from a config: nothing is downloaded

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import BertConfig, BertForSequenceClassification

VOCAB, MAX_LEN = 80, 24
PAD, CLS, SEP, MARK = 0, 1, 2, 3  # ids 4.. are ordinary words


class MarkerSentences(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.input_ids = torch.full((n, MAX_LEN), PAD)
        self.attention_mask = torch.zeros(n, MAX_LEN, dtype=torch.long)
        self.labels = (torch.rand(n, generator=g) < 0.5).long()
        lengths = torch.randint(8, MAX_LEN + 1, (n,), generator=g)
        for i in range(n):
            length = int(lengths[i])
            words = torch.randint(4, VOCAB, (length - 2,), generator=g)
            if self.labels[i]:
                words[torch.randint(0, length - 2, (1,), generator=g)] = MARK
            self.input_ids[i, 0] = CLS
            self.input_ids[i, 1:length - 1] = words
            self.input_ids[i, length - 1] = SEP
            self.attention_mask[i, :length] = 1

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i],
                "labels": self.labels[i]}


def build_model(hidden=32):
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=MAX_LEN, pad_token_id=PAD,
                        num_labels=2)
    return BertForSequenceClassification(config)


def bert_forward(model, batch):
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits, batch["labels"]


def dldoctor_spec(lr=1e-3, batch_size=32, hidden=32, warmup=30):
    return {
        "model": lambda: build_model(hidden),
        "train_loader": DataLoader(MarkerSentences(1024, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(MarkerSentences(256, 1), batch_size=128),
        "forward": bert_forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        "scheduler": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup)),
    }
