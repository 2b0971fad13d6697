# EXPECT: train-val-leakage
# STAGES: run, data
"""Activity recognition from a phone's accelerometer: 86% validation accuracy, chance level on new sessions.

Eighteen volunteers each walked, ran and climbed stairs for a session with the phone in
their pocket; each session is cut into 2-second windows (3 axes x 50 samples). Inside a
session the phone sits at one angle, so gravity adds the same offset to every window of
it, and the wearer's cadence repeats: windows of one session resemble each other far
more than windows of different sessions. The windows were pooled and split at random
(train_test_split by window), so every validation window has siblings from its own
session in training, and the network can name the activity by recognising the session.
Trained for 15 epochs (the __main__ block) it scores 86% on this split and 36% (chance is
33%) when the windows are split by session (5-fold GroupKFold).

No session IDs are given to dldoctor: it finds the per-session clusters in the raw
windows and that validation windows sit inside them (warning).
"""
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

WEARERS, ACTIVITIES, WINDOWS, RATE, LENGTH = 18, 3, 40, 25, 50


def recordings(seed=0):
    """(windows [n, 3, 50], activity, session) for every window of every session."""
    rng = np.random.default_rng(seed)
    windows, activity, session = [], [], []
    for wearer in range(WEARERS):
        cadence = 1.6 + 0.6 * rng.random()  # steps per second when walking
        for act in range(ACTIVITIES):  # walk, run, stairs
            gravity = rng.standard_normal(3)
            gravity *= 9.8 / np.linalg.norm(gravity)  # how the phone sits in the pocket this time
            swing = rng.standard_normal(3)
            swing /= np.linalg.norm(swing)
            freq, amp = cadence * (1.0, 1.5, 0.8)[act], 2.0 * (1.0, 2.0, 1.3)[act]
            for _ in range(WINDOWS):
                t = np.arange(LENGTH) / RATE + 10 * rng.random()
                motion = amp * np.sin(2 * np.pi * freq * t)
                windows.append(gravity[:, None] + swing[:, None] * motion + 0.5 * rng.standard_normal((3, LENGTH)))
                activity.append(act)
                session.append(wearer * ACTIVITIES + act)
    return np.asarray(windows, dtype=np.float32) / 9.8, np.asarray(activity), np.asarray(session)


def load_data():
    x, y, _ = recordings()
    rows = np.arange(len(x))
    train_rows, val_rows = train_test_split(rows, test_size=0.2, random_state=0, stratify=y)  # by window: the bug
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    return as_set(train_rows), as_set(val_rows)


def make_model(channels=16):
    return nn.Sequential(
        nn.Conv1d(3, channels, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(channels, channels, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Linear(channels, ACTIVITIES),
    )


def dldoctor_spec(lr=3e-3, channels=16, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: make_model(channels),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


def val_accuracy(train, val, epochs=15):
    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for x, y in DataLoader(train, batch_size=64, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    x, y = val.tensors
    return (model(x).argmax(1) == y).float().mean().item()


if __name__ == "__main__":
    from sklearn.model_selection import GroupKFold

    print(f"split by window:  val accuracy {val_accuracy(*load_data()):.2f}")
    x, y, session = recordings()
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    folds = [val_accuracy(as_set(t), as_set(v)) for t, v in GroupKFold(n_splits=5).split(x, y, session)]
    print(f"split by session: val accuracy {np.mean(folds):.2f} (5 folds)")
