# EXPECT: input-pipeline-bottleneck
# STAGES: run, overfit, evaluate
"""A tabular classifier whose dataset asks a feature store for every row, one call per item.

"__getitem__ looks the patient's features up in our feature service (about 4 ms a
call) and returns them with the label. The network trains very slowly although the
model is tiny."
"""
import time

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset


class FeatureStore:
    """Stands in for a remote key-value service: every lookup is a round trip."""

    def __init__(self, table):
        self._table = table

    def get(self, key):
        time.sleep(0.004)  # network latency of one request
        return self._table[key]


class Patients(Dataset):
    def __init__(self, store, ids, labels):
        self.store, self.ids, self.labels = store, ids, labels

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        features = self.store.get(self.ids[i])  # one request per sample
        return torch.tensor(features, dtype=torch.float32), torch.tensor(float(self.labels[i]))


def dldoctor_spec(lr=3e-3, batch_size=16):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ids = [f"patient-{i}" for i in range(96)]
    store = FeatureStore({key: X[i].tolist() for i, key in enumerate(ids)})
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0)),
        "train_loader": DataLoader(Patients(store, ids, y[:96]), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }
