# EXPECT: healthy
"""A torch.nn.Transformer (encoder-decoder) classifier: one learned query decodes the sequence's topic.

The encoder reads a token sequence of length 24; the decoder gets a single learned query
vector as its target sequence and cross-attends to the encoder's output, and a linear head
reads the decoded query (the Perceiver / DETR style of pooling). Task: four keyword tokens,
each sequence holds 4 copies of its topic keyword and 0-2 copies of each other keyword
among random words; the label is the topic.

Why healthy: the topic keyword is always the most frequent one, nn.Transformer's own
init (Xavier-uniform on every matrix, post-LayerNorm) trains with Adam at 1e-3, and a
plain loop goes from 1/4 to near-perfect validation accuracy within a couple of hundred steps.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH, TOPICS = 64, 24, 4  # ids 0..3 are the keywords


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(TOPICS, VOCAB, (n, LENGTH), generator=g)
    topic = torch.randint(0, TOPICS, (n,), generator=g)
    for i in range(n):
        counts = torch.randint(0, 3, (TOPICS,), generator=g)
        counts[topic[i]] = 4
        keywords = torch.repeat_interleave(torch.arange(TOPICS), counts)
        tokens[i, torch.randperm(LENGTH, generator=g)[:len(keywords)]] = keywords
    return TensorDataset(tokens, topic)


class QueryTransformer(nn.Module):
    def __init__(self, d_model=32, heads=4, layers=1):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, d_model) * 0.02)
        self.query = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.transformer = nn.Transformer(d_model, heads, num_encoder_layers=layers, num_decoder_layers=layers,
                                          dim_feedforward=2 * d_model, dropout=0.1, batch_first=True)
        self.head = nn.Linear(d_model, TOPICS)

    def forward(self, tokens):
        decoded = self.transformer(self.embed(tokens) + self.pos, self.query.expand(len(tokens), -1, -1))
        return self.head(decoded[:, 0])


def dldoctor_spec(lr=1e-3, batch_size=64, d_model=32):
    return {
        "model": lambda: QueryTransformer(d_model),
        "train_loader": DataLoader(make_data(2048, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(512, 1), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }
