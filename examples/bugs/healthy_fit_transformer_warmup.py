# EXPECT: healthy
# A small transformer encoder classifying synthetic token sequences, AdamW with linear warm-up.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, LENGTH, CLASSES = 64, 16, 4


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(CLASSES, VOCAB, (n, LENGTH), generator=g)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    for i in range(n):
        tokens[i, torch.randperm(LENGTH, generator=g)[:4]] = labels[i]
    return TensorDataset(tokens, labels)


class TokenClassifier(nn.Module):
    def __init__(self, d_model=32, heads=4, layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, CLASSES)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.head(h.mean(dim=1))


def dldoctor_spec(lr=3e-3, batch_size=64, warmup=20):
    return {
        "model": TokenClassifier,
        "train_loader": DataLoader(make_data(2048, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(512, 1), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        "scheduler": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup)),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    scheduler = spec["scheduler"](optimizer)
    for epoch in range(10):
        model.train()
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in spec["val_loader"])
        print(f"epoch {epoch + 1}  loss {loss.item():.3f}  val_accuracy {correct / 512:.3f}")
