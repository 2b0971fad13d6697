# EXPECT: label-out-of-range
# A multi-label tagger trained as if it were multi-class: an MLP reads synthetic
# bag-of-words counts of 300 short recipes and predicts 8 tags (vegetarian, spicy,
# quick, ...), two or three per recipe, with nn.CrossEntropyLoss on the multi-hot tag
# vectors. CrossEntropyLoss accepts float targets of the output's shape and reads each
# row as a probability distribution over the classes, so nothing crashes; but a row
# with three 1s sums to 3, the softmax can give the tags only one unit of probability
# between them, and the loss cannot go below the row's entropy (3 ln 3 for three tags):
# the model can never fit a sample. dldoctor reads the target rows (sums 2 to 3, not 1)
# against the loss's contract and points to BCEWithLogitsLoss for independent tags.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCABULARY, TAGS = 120, 8


def make_dataset(n=300):
    g = torch.Generator().manual_seed(11)
    tags = torch.zeros(n, TAGS)
    for i in range(n):
        chosen = torch.randperm(TAGS, generator=g)[: 2 + int(torch.randint(0, 2, (1,), generator=g))]
        tags[i, chosen] = 1.0
    word_rates = torch.rand(TAGS, VOCABULARY, generator=g) ** 4
    counts = torch.poisson(tags @ word_rates * 3.0, generator=g)
    return TensorDataset(torch.log1p(counts), tags)


def dldoctor_spec(lr=3e-3, hidden=64, batch_size=32):
    return {
        "model": lambda: nn.Sequential(nn.Linear(VOCABULARY, hidden), nn.ReLU(), nn.Linear(hidden, TAGS)),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
