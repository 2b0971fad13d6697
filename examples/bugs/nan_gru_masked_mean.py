# EXPECT: numerical-instability
# A GRU sentiment-style classifier over padded token sequences of varying length, trained with Adam.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE = 80
MAX_LEN = 20
PAD = 0


class GRUPooler(nn.Module):
    def __init__(self, embed_dim=32, hidden_size=64, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim, padding_idx=PAD)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens):
        out, _ = self.gru(self.embed(tokens))
        mask = (tokens != PAD).unsqueeze(-1).float()
        pooled = (out * mask).sum(dim=1) / mask.sum(dim=1)
        return self.head(pooled)


def make_dataset(n=640):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, VOCAB_SIZE, (n, MAX_LEN), generator=g)
    lengths = torch.randint(0, MAX_LEN + 1, (n, 1), generator=g)  # some reviews are empty
    tokens = tokens * (torch.arange(MAX_LEN) < lengths)
    labels = ((tokens > 0) & (tokens < 20)).sum(dim=1).gt(2).long()
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=2e-3, batch_size=32):
    return {
        "model": GRUPooler,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for tokens, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(tokens), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
