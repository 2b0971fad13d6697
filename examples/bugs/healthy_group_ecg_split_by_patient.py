# EXPECT: healthy
# STAGES: run, data
"""Heart-risk classifier on Holter recordings, split by patient: the look-alike of a per-recording split.

A hundred patients, 6 recordings each, 24 beat-morphology features with a strong personal
signature (the data of leak_group_ecg_patients_groups.py, from a larger cohort, and a
small network with dropout). Here the split is by patient (sklearn's StratifiedGroupKFold,
which also keeps the share of at-risk patients), and the spec gives each recording's
patient (`groups`): no patient is on both sides (0 shared), so the check is silent and
the validation score is the score on new patients. The recordings of a patient still
resemble each other far more than those of two patients, so the distribution-shift
check's domain classifier keeps each patient's recordings in one of its folds: AUC 0.41
(with folds by row it recognises the patients, 0.73, a false shift). New patients are
harder than seen ones: a full run's bias-variance report says so.
"""
import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PATIENTS, RECORDINGS, FEATURES = 100, 6, 24


def holter_features(seed=7):
    """(features, at-risk label, patient ID) per recording."""
    rng = np.random.default_rng(seed)
    signature = rng.standard_normal((PATIENTS, FEATURES))
    risk = signature[:, :4].sum(1) + 0.8 * rng.standard_normal(PATIENTS)
    at_risk = (risk > np.median(risk)).astype(np.int64)
    patient = np.repeat(np.arange(PATIENTS), RECORDINGS)
    x = signature[patient] + 0.35 * rng.standard_normal((len(patient), FEATURES))
    return x.astype(np.float32), at_risk[patient], patient


def load_data():
    x, y, patient = holter_features()
    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)  # one fold of five: 20% of patients
    train_rows, val_rows = next(splitter.split(x, y, groups=patient))
    mean, std = x[train_rows].mean(0), x[train_rows].std(0)
    x = (x - mean) / std
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    return as_set(train_rows), as_set(val_rows), patient[train_rows], patient[val_rows]


def dldoctor_spec(lr=1e-2, hidden=32, batch_size=32):
    train, val, train_patients, val_patients = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Dropout(0.3),
                                       nn.Linear(hidden, 2)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "groups": {"train": train_patients, "val": val_patients},
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    model.eval()
    x, y = spec["val_loader"].dataset.tensors
    print(f"val accuracy on new patients: {(model(x).argmax(1) == y).float().mean():.2f}")
