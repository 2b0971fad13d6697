# EXPECT: healthy
# STAGES: run, overfit, evaluate
# A small causal transformer language model on synthetic text: token streams drawn from a
# random first-order Markov chain over 32 tokens (each row of the transition matrix from
# a Dirichlet(0.3)), so the next token is uncertain by construction: the chain's entropy
# is 2.49 nats per token and no model can beat a per-token error of 0.76. The user does
# not know that floor (no irreducible_error in the spec). After the short run's fixed
# budget the per-token error is 0.76 on both splits and the validation error has been flat
# for three epochs (0.766), which read against a floor of 0 looks like heavy
# under-fitting. But the training loss is still falling clearly (2.804 -> 2.710 -> 2.647,
# about 4.6% more to go at its pace, towards the 2.49 floor): the model is still learning
# the transition table, and a gap to the unknown floor is not established.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH = 32, 32


def make_chain(seed=0):
    g = torch.Generator().manual_seed(seed)
    gamma = torch.distributions.Gamma(torch.full((VOCAB, VOCAB), 0.3), torch.ones(VOCAB, VOCAB))
    torch.manual_seed(seed)
    weights = gamma.sample()
    return weights / weights.sum(1, keepdim=True), g


def make_streams(n, seed):
    transition, g = make_chain()
    g.manual_seed(seed)
    tokens = torch.zeros(n, LENGTH + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, VOCAB, (n,), generator=g)
    for t in range(LENGTH):
        tokens[:, t + 1] = torch.multinomial(transition[tokens[:, t]], 1, generator=g).squeeze(1)
    return TensorDataset(tokens[:, :-1], tokens[:, 1:])


class TinyLM(nn.Module):
    def __init__(self, d=32, heads=2, layers=1):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.pos = nn.Parameter(torch.zeros(1, LENGTH, d))
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, VOCAB)
        self.register_buffer("mask", torch.triu(torch.full((LENGTH, LENGTH), float("-inf")), diagonal=1))

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        return self.head(self.encoder(x, mask=self.mask[: tokens.shape[1], : tokens.shape[1]]))


def lm_forward(model, batch):
    inputs, targets = batch
    return model(inputs).reshape(-1, VOCAB), targets.reshape(-1)


def dldoctor_spec(lr=2e-3):
    return {
        "model": TinyLM,
        "train_loader": DataLoader(make_streams(512, seed=1), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_streams(128, seed=2), batch_size=64),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr),
        "forward": lm_forward,
        "num_classes": VOCAB,
    }
