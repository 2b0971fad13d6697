# EXPECT: healthy
# A GRU next-token language model with dropout on synthetic arithmetic token streams.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE = 50
SEQ_LEN = 21


class CharRNN(nn.Module):
    def __init__(self, embed_dim=16, hidden_size=64, dropout=0.2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=2, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, VOCAB_SIZE)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.decoder(self.drop(out))


def make_dataset(n=512):
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB_SIZE, (n, 1), generator=g)
    step = torch.randint(1, 4, (n, 1), generator=g)
    return TensorDataset((start + step * torch.arange(SEQ_LEN)) % VOCAB_SIZE)


def lm_forward(model, batch):
    (tokens,) = batch
    logits = model(tokens[:, :-1])
    return logits.reshape(-1, VOCAB_SIZE), tokens[:, 1:].reshape(-1)


def dldoctor_spec(lr=3e-3, batch_size=32):
    return {
        "model": CharRNN,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "forward": lm_forward,
        "num_classes": VOCAB_SIZE,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        model.train()
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](*lm_forward(model, batch))
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
