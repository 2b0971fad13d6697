# EXPECT: label-out-of-range
# Knowledge distillation on scikit-learn's digits: a small MLP student learns the
# class distribution of a logistic-regression teacher with nn.KLDivLoss. The student
# returns log_softmax, as KLDivLoss wants, but the dataset stores the teacher's
# predict_log_proba, and the loss is built without log_target=True, so it reads those
# log-probabilities (all <= 0, with exp of each row summing to 1) as probabilities:
# target * log(target) of a negative "probability" is NaN, and the loss is NaN from
# the first step. dldoctor reads the target rows against the loss's contract and names
# the mismatch (log_target=True, or softmax targets) rather than only the NaN.
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Student(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return torch.log_softmax(self.net(x), dim=1)


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    teacher = LogisticRegression(max_iter=500).fit(X, y)
    soft = torch.tensor(teacher.predict_log_proba(X), dtype=torch.float32)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), soft)


def dldoctor_spec(lr=1e-3, hidden=32, batch_size=64):
    return {
        "model": lambda: Student(hidden),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.KLDivLoss(reduction="batchmean"),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
