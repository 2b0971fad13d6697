# EXPECT: healthy
# A GRU classifier on top of frozen pre-computed word vectors (built here from co-occurrence statistics).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE, SEQ_LEN, EMBED_DIM = 60, 20, 24


def pretrained_vectors():
    g = torch.Generator().manual_seed(1)
    cooc = torch.rand(VOCAB_SIZE, VOCAB_SIZE, generator=g) ** 4
    u, s, _ = torch.linalg.svd(torch.log1p(cooc + cooc.T))
    vectors = u[:, :EMBED_DIM] * s[:EMBED_DIM].sqrt()
    return vectors / vectors.norm(dim=1, keepdim=True)


class GRUClassifier(nn.Module):
    def __init__(self, hidden_size=64, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(pretrained_vectors(), freeze=True)
        self.gru = nn.GRU(EMBED_DIM, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens):
        _, h_n = self.gru(self.embed(tokens))
        return self.head(h_n[-1])


def make_dataset(n=640):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB_SIZE, (n, SEQ_LEN), generator=g)
    positive, negative = (tokens < 10).sum(dim=1), ((tokens >= 10) & (tokens < 20)).sum(dim=1)
    labels = (positive > negative).long()
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=3e-3, batch_size=32):
    return {
        "model": GRUClassifier,
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
