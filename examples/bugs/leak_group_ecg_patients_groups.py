# EXPECT: train-val-leakage
# STAGES: run, data
"""Heart-risk classifier on beat-morphology features: 100% validation accuracy, 78% on new patients.

Forty patients wore a Holter monitor; each of their 15 recordings is summarised by 24
beat-morphology features (QRS width, ST level, T-wave amplitude, ...). A patient's
features carry a personal signature (body build, electrode placement) about three times
the recording-to-recording variation, and the label is the patient's (at risk or not).
The recordings were split at random, so nearly every validation patient also has
recordings in training: the model learns to recognise patients, not risk. Trained for 30
epochs (the __main__ block), it scores 100% on this validation split and 78% when the
same data is split by patient (5-fold GroupKFold).

The spec gives each recording's patient ID (`groups`), so dldoctor counts the shared
patients exactly: every one of the 40 is on both sides (warning).
"""
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PATIENTS, RECORDINGS, FEATURES = 40, 15, 24


def holter_features(seed=0):
    """(features, at-risk label, patient ID) per recording."""
    rng = np.random.default_rng(seed)
    signature = rng.standard_normal((PATIENTS, FEATURES))  # each patient's own morphology
    risk = signature[:, :4].sum(1) + 0.8 * rng.standard_normal(PATIENTS)  # risk follows a few traits, noisily
    at_risk = (risk > np.median(risk)).astype(np.int64)
    patient = np.repeat(np.arange(PATIENTS), RECORDINGS)
    x = signature[patient] + 0.35 * rng.standard_normal((len(patient), FEATURES))  # recording-to-recording
    return x.astype(np.float32), at_risk[patient], patient


def load_data():
    x, y, patient = holter_features()
    rows = np.arange(len(x))
    # The bug: recordings, not patients, are split.
    train_rows, val_rows = train_test_split(rows, test_size=0.2, random_state=0, stratify=y)
    mean, std = x[train_rows].mean(0), x[train_rows].std(0)
    x = (x - mean) / std
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    return as_set(train_rows), as_set(val_rows), patient[train_rows], patient[val_rows]


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=32):
    train, val, train_patients, val_patients = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "groups": {"train": train_patients, "val": val_patients},
    }


def val_accuracy(train, val, epochs=30):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for x, y in DataLoader(train, batch_size=32, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    x, y = val.tensors
    return (model(x).argmax(1) == y).float().mean().item()


if __name__ == "__main__":
    from sklearn.model_selection import GroupKFold

    train, val, _, _ = load_data()
    print(f"split by recording: val accuracy {val_accuracy(train, val):.2f}")
    x, y, patient = holter_features()
    x = (x - x.mean(0)) / x.std(0)
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    folds = [val_accuracy(as_set(t), as_set(v)) for t, v in GroupKFold(n_splits=5).split(x, y, patient)]
    print(f"split by patient:   val accuracy {np.mean(folds):.2f} (5 folds)")
