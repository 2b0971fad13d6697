# EXPECT: healthy
"""DistilBertForSequenceClassification from a tiny DistilBertConfig (random init), three topics.

Every sentence is random filler words plus two or three copies of one of three topic keywords;
the label is the topic. Lengths vary from 10 to 28 tokens and are right-padded to 28, with
the attention mask marking the real tokens. DistilBERT classifies from the first position
through its pre-classifier (Linear + ReLU + dropout), as it does when fine-tuned.

Why healthy: the keywords are unambiguous, the DistilBERT defaults (sinusoid-free learned
positions, dropout 0.1, normal(0, 0.02) init) train from scratch with Adam at 1e-3, and
a plain loop goes from chance (1/3) to near-perfect validation accuracy.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import DistilBertConfig, DistilBertForSequenceClassification

VOCAB, MAX_LEN, TOPICS = 120, 28, 3
PAD, CLS = 0, 1
KEYWORDS = torch.tensor([2, 3, 4])  # ids 5.. are filler


class TopicSentences(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.full((n, MAX_LEN), PAD)
        self.mask = torch.zeros(n, MAX_LEN, dtype=torch.long)
        self.topic = torch.randint(0, TOPICS, (n,), generator=g)
        for i in range(n):
            length = int(torch.randint(10, MAX_LEN + 1, (1,), generator=g))
            words = torch.randint(5, VOCAB, (length,), generator=g)
            words[0] = CLS
            copies = int(torch.randint(2, 4, (1,), generator=g))
            where = 1 + torch.randperm(length - 1, generator=g)[:copies]
            words[where] = KEYWORDS[self.topic[i]]
            self.ids[i, :length] = words
            self.mask[i, :length] = 1

    def __len__(self):
        return len(self.topic)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "topic": self.topic[i]}


def build_model(dim=32):
    config = DistilBertConfig(vocab_size=VOCAB, max_position_embeddings=MAX_LEN, dim=dim, n_layers=2, n_heads=2,
                              hidden_dim=2 * dim, pad_token_id=PAD, num_labels=TOPICS)
    return DistilBertForSequenceClassification(config)


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["topic"]


def dldoctor_spec(lr=1e-3, batch_size=32, dim=32):
    return {
        "model": lambda: build_model(dim),
        "train_loader": DataLoader(TopicSentences(1200, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(TopicSentences(300, 1), batch_size=150),
        "forward": forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
