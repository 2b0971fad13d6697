# EXPECT: healthy
# STAGES: run, data
"""Hand-gesture recognition from an EMG armband, split by user: grouped data, a sound split, no groups given.

Thirty users each perform 4 gestures, 12 repetitions each; a repetition becomes the
root-mean-square activity of 16 electrodes. Where the armband sits on the forearm and the
user's physiology add a personal offset to every electrode, larger than what the gesture
changes, so one user's repetitions are far closer to each other than to anyone else's:
exactly the geometry of per-subject leakage. But the held-out users are new (sklearn's
GroupShuffleSplit on the user of each repetition), and the spec gives no groups:
dldoctor must tell from the data alone that this split is sound. Measured: the training
repetitions form tight clusters (95% of a random half of them fall inside the other
half's), validation repetitions fall inside none (0%; a per-repetition split of the same
data puts 69% there and is a warning), so the group-leakage hint stays silent. The
distribution-shift check's domain classifier keeps each cluster in one of its folds: AUC
0.63 (with folds by row it recognises users, 1.00). New users are harder than seen ones
(72% validation accuracy after 20 epochs): a full run's bias-variance report says so.
"""
import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

USERS, GESTURES, REPETITIONS, ELECTRODES = 30, 4, 12, 16


def armband_features(seed=11):
    """(RMS per electrode, gesture, user) for every repetition."""
    rng = np.random.default_rng(seed)
    gesture_pattern = rng.standard_normal((GESTURES, ELECTRODES))
    placement = 2.0 * rng.standard_normal((USERS, ELECTRODES))
    user = np.repeat(np.arange(USERS), GESTURES * REPETITIONS)
    gesture = np.tile(np.repeat(np.arange(GESTURES), REPETITIONS), USERS)
    x = placement[user] + gesture_pattern[gesture] + 0.2 * rng.standard_normal((len(user), ELECTRODES))
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), gesture, user


def load_data():
    x, y, user = armband_features()
    train_rows, val_rows = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0).split(x, y, user))
    as_set = lambda r: TensorDataset(torch.from_numpy(x[r]), torch.from_numpy(y[r]))  # noqa: E731
    return as_set(train_rows), as_set(val_rows)


def dldoctor_spec(lr=1e-2, hidden=64, batch_size=64):
    train, val = load_data()
    return {
        "model": lambda: nn.Sequential(nn.Linear(ELECTRODES, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                       nn.ReLU(), nn.Linear(hidden, GESTURES)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=512),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(20):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
    x, y = spec["val_loader"].dataset.tensors
    print(f"val accuracy on new users: {(model(x).argmax(1) == y).float().mean():.2f}")
