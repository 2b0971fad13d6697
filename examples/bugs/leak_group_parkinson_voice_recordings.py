# EXPECT: train-val-leakage
# STAGES: run, data
"""Parkinson's screening from sustained-vowel recordings: near-perfect validation, a coin flip in the clinic.

Thirty-six speakers each recorded the vowel "aaah" 24 times; every recording becomes 22
acoustic measures (jitter, shimmer, harmonics-to-noise ratio, pitch statistics...). A
voice is personal: one speaker's recordings differ from each other far less than two
speakers do, and the diagnosis belongs to the speaker. The recordings were shuffled and
split by recording (torch's random_split), the mistake behind many published
voice-biomarker results: almost every validation speaker also speaks in training, and
the model scores them by recognising the voice. Trained for 30 epochs (the __main__
block) it reaches 100% validation accuracy; split by speaker (5-fold GroupKFold), 64%.

The spec does not say who spoke each recording, so dldoctor reads it from the data: the
training recordings form tight per-speaker clusters, and validation recordings fall
inside them as often as training recordings do (warning).
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

SPEAKERS, TAKES, MEASURES = 36, 24, 22


def voice_measures(seed=0):
    """(acoustic measures, diagnosis, speaker) per recording, standardised."""
    rng = np.random.default_rng(seed)
    voice = rng.standard_normal((SPEAKERS, MEASURES))  # the speaker's vocal tract and habits
    severity = voice[:, :3].mean(1) + 0.3 * rng.standard_normal(SPEAKERS)
    parkinsons = (severity > np.median(severity)).astype(np.int64)
    speaker = np.repeat(np.arange(SPEAKERS), TAKES)
    takes = voice[speaker] + 0.4 * rng.standard_normal((len(speaker), MEASURES))  # take-to-take variation
    takes = (takes - takes.mean(0)) / takes.std(0)
    return takes.astype(np.float32), parkinsons[speaker], speaker


def load_data():
    x, y, _ = voice_measures()
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return random_split(data, [0.8, 0.2], generator=torch.Generator().manual_seed(0))  # by recording: the bug


def make_model(hidden=64, dropout=0.2):
    return nn.Sequential(nn.Linear(MEASURES, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def dldoctor_spec(lr=1e-3, hidden=64, batch_size=32):
    train, val = load_data()
    return {
        "model": lambda: make_model(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
    }


def val_accuracy(train, val, epochs=30):
    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(epochs):
        for x, y in DataLoader(train, batch_size=32, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    x, y = next(iter(DataLoader(val, batch_size=len(val))))
    return (model(x).argmax(1) == y).float().mean().item()


if __name__ == "__main__":
    from sklearn.model_selection import GroupKFold

    print(f"split by recording: val accuracy {val_accuracy(*load_data()):.2f}")
    x, y, speaker = voice_measures()
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    folds = [val_accuracy(as_set(t), as_set(v)) for t, v in GroupKFold(n_splits=5).split(x, y, speaker)]
    print(f"split by speaker:   val accuracy {np.mean(folds):.2f} (5 folds)")
