# EXPECT: bad-initialization
# A small Transformer language model on synthetic token streams.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB_SIZE = 64
SEQ_LEN = 12


class TinyLM(nn.Module):
    def __init__(self, d_model=32, nhead=4, num_layers=1):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos = nn.Parameter(torch.zeros(1, SEQ_LEN, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, 2 * d_model, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, VOCAB_SIZE, bias=False)
        self.lm_head.weight = self.embed.weight
        mask = torch.triu(torch.full((SEQ_LEN, SEQ_LEN), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        x = self.encoder(x, mask=self.mask[: tokens.shape[1], : tokens.shape[1]])
        return self.lm_head(self.norm(x))


def make_dataset(n=256):
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB_SIZE, (n, 1), generator=g)
    step = torch.randint(1, 5, (n, 1), generator=g)
    tokens = (start + step * torch.arange(SEQ_LEN + 1)) % VOCAB_SIZE
    return TensorDataset(tokens[:, :-1], tokens[:, 1:])


def lm_forward(model, batch):
    inputs, targets = batch
    return model(inputs).reshape(-1, VOCAB_SIZE), targets.reshape(-1)


def dldoctor_spec(lr=3e-4, batch_size=32):
    return {
        "model": TinyLM,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr),
        "forward": lm_forward,
        "num_classes": VOCAB_SIZE,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](*spec["forward"](model, batch))
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
