# EXPECT: input-pipeline-bottleneck
# STAGES: run, overfit, evaluate
"""A tabular model whose dataset reads its CSV file again for every row it returns.

"The data set is a CSV export; my Dataset opens and parses the file in __getitem__ and
returns row i, so that it never holds the whole table in memory. An epoch takes far
longer than the network should need."
"""
import os
import tempfile

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, Dataset

CSV = os.path.join(tempfile.gettempdir(), "dldoctor_zoo_breast_cancer.csv")


def export_csv():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    np.savetxt(CSV, np.column_stack([X, y]), delimiter=",", fmt="%.6f")


class CsvRows(Dataset):
    def __init__(self, path, rows):
        self.path = path
        self.rows = rows  # train on the first rows of the export

    def __len__(self):
        return self.rows

    def __getitem__(self, i):
        table = np.loadtxt(self.path, delimiter=",", dtype=np.float32)  # the bug: the whole file, every item
        row = table[i]
        return torch.from_numpy(row[:-1].copy()), torch.tensor(row[-1])


def dldoctor_spec(lr=2e-3, batch_size=16):
    export_csv()
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 1), nn.Flatten(0)),
        "train_loader": DataLoader(CsvRows(CSV, rows=128), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.BCEWithLogitsLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
    }
