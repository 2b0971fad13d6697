# EXPECT: healthy
# STAGES: run, data
"""Keyword-spotting transformer whose Dataset returns dicts; the spec's forward says which key is which."""
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

VOCAB, LENGTH, CLASSES = 48, 16, 4


class Utterances(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(CLASSES, VOCAB, (n, LENGTH), generator=g)
        self.labels = torch.randint(0, CLASSES, (n,), generator=g)
        for i in range(n):
            self.tokens[i, torch.randperm(LENGTH, generator=g)[:4]] = self.labels[i]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"tokens": self.tokens[i], "mask": torch.ones(LENGTH, dtype=torch.bool), "label": self.labels[i]}


class Classifier(nn.Module):
    def __init__(self, d_model=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, CLASSES)

    def forward(self, tokens, mask):
        return self.head(self.encoder(self.embed(tokens), src_key_padding_mask=~mask).mean(1))


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": Classifier,
        "train_loader": DataLoader(Utterances(1500, 0), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(Utterances(400, 1), batch_size=200),
        "forward": lambda model, batch: (model(batch["tokens"], batch["mask"]), batch["label"]),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            outputs, targets = spec["forward"](model, batch)
            loss = spec["loss_fn"](outputs, targets)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
