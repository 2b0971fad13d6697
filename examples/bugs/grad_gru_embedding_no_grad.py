# EXPECT: no-gradient-flow
# A GRU that classifies synthetic token sequences (does a "keyword" token occur?), SGD with momentum.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE = 60
SEQ_LEN = 20


class GRUClassifier(nn.Module):
    def __init__(self, embed_dim=32, hidden_size=64, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens):
        with torch.no_grad():
            x = self.embed(tokens)
        _, h_n = self.gru(x)
        return self.head(h_n[-1])


def make_dataset(n=640):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, VOCAB_SIZE, (n, SEQ_LEN), generator=g)
    labels = (tokens < 4).any(dim=1).long()
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=0.05, batch_size=32):
    return {
        "model": GRUClassifier,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
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
