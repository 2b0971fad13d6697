# EXPECT: no-gradient-flow
# A small Transformer encoder that classifies synthetic token sequences, trained with AdamW.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE = 100
SEQ_LEN = 24


class TextClassifier(nn.Module):
    def __init__(self, d_model=64, nhead=4, num_layers=3, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos = nn.Parameter(torch.randn(1, SEQ_LEN, d_model) * 0.02)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2 * d_model, dropout=0.1, batch_first=True)
            for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos
        for layer in self.layers:
            h = layer(x)
        return self.head(self.norm(h).mean(dim=1))


def make_dataset(n=512):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB_SIZE, (n, SEQ_LEN), generator=g)
    labels = ((tokens < 10).sum(dim=1) > 2).long()
    return TensorDataset(tokens, labels)


def dldoctor_spec(lr=3e-4, batch_size=32):
    return {
        "model": TextClassifier,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for tokens, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(tokens), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
