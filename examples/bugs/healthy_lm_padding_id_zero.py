# EXPECT: healthy
# A GRU language model over variable-length counting sequences (the ids wrap around),
# with the usual vocabulary layout: id 0 is <pad>, id 1 is <eos>, the 38 content ids
# follow. The spec's forward shifts the tokens to make next-token targets and marks
# padded positions -100 (ignored by the loss), so the targets run 1..39: every id but
# the padding id 0, up to 39 = V - 1. A rule that only counts labels reads "label 0
# never occurs, the rest go up to the output width" as 1-based labels; it is not: 1-based
# labels would reach V = 40, an index the 40-wide output cannot hold. Here 0 is simply
# an id that is never a target, and dldoctor stays silent.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

PAD, EOS = 0, 1
VOCAB = 40
LENGTH = 17


class Progressions(Dataset):
    """Counting sequences over the 38 content ids (2..39, wrapping around), ended by <eos>
    and padded with <pad>. The first id sets the rest: the step (1 to 3) and the length."""

    def __init__(self, n=640):
        g = torch.Generator().manual_seed(8)
        self.rows = []
        for start in torch.randint(0, VOCAB - 2, (n,), generator=g).tolist():
            step, length = 1 + start % 3, 8 + start % 8
            ids = [2 + (start + step * k) % (VOCAB - 2) for k in range(length)] + [EOS]
            self.rows.append(torch.tensor(ids + [PAD] * (LENGTH - len(ids))))

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class CharLM(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.gru = nn.GRU(32, width, batch_first=True)
        self.out = nn.Linear(width, VOCAB)

    def forward(self, tokens):
        hidden, _ = self.gru(self.embed(tokens))
        return self.out(hidden)


def next_character(model, tokens):
    logits = model(tokens[:, :-1])
    targets = tokens[:, 1:].masked_fill(tokens[:, 1:] == PAD, -100)
    return logits.reshape(-1, VOCAB), targets.reshape(-1)


def dldoctor_spec(lr=3e-3, width=64, batch_size=32):
    return {
        "model": lambda: CharLM(width),
        "train_loader": DataLoader(Progressions(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "forward": next_character,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for tokens in spec["train_loader"]:
            optimizer.zero_grad()
            logits, targets = next_character(model, tokens)
            loss = F.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
