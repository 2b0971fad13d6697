# EXPECT: loss-input-probabilities
# A small Transformer encoder that classifies synthetic token sequences by their dominant token group.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, SEQ_LEN, NUM_CLASSES = 40, 24, 4


class SequenceClassifier(nn.Module):
    def __init__(self, d_model=32, nhead=4, layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.zeros(1, SEQ_LEN, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.classifier = nn.Linear(d_model, NUM_CLASSES)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.classifier(h.mean(dim=1))


def make_dataset(n=1000):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    tokens = torch.randint(0, VOCAB, (n, SEQ_LEN), generator=g)
    per_group = VOCAB // NUM_CLASSES
    group = labels.view(-1, 1) * per_group + torch.randint(0, per_group, (n, SEQ_LEN), generator=g)
    keep = torch.rand(n, SEQ_LEN, generator=g) < 0.5
    return TensorDataset(torch.where(keep, group, tokens), labels)


def dldoctor_spec(lr=1e-3, d_model=32, batch_size=64):
    return {
        "model": lambda: SequenceClassifier(d_model),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.NLLLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "num_classes": NUM_CLASSES,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
