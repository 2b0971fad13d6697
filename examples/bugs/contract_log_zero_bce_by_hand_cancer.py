# EXPECT: numerical-instability
# An MLP on scikit-learn's breast-cancer data (features standardised) with binary
# cross-entropy written out by hand on sigmoid probabilities:
# -(y log p + (1 - y) log(1 - p)). Once a benign sample's logit passes ~17, sigmoid rounds
# to exactly 1.0 in float32, log(1 - p) is -inf and 0 * -inf is NaN: the single-batch run
# at Adam's lr 0.01 turns NaN at step 20. Lowering the learning rate does not cure it,
# it only delays it: re-run at lr 0.001 past convergence, the same torch.log turns -inf
# again (step 442). dldoctor names numerical-instability at the loss's line with the
# stable fix (F.binary_cross_entropy_with_logits on the logits), not lr-too-high.
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def binary_cross_entropy(logits, targets):
    p = torch.sigmoid(logits)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()


def make_datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)

    def to_dataset(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32),
                             torch.tensor(y, dtype=torch.float32).view(-1, 1))

    return to_dataset(X_train, y_train), to_dataset(X_val, y_val)


def dldoctor_spec(lr=1e-2, hidden=64, batch_size=64):
    train, val = make_datasets()
    return {
        "model": lambda: nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, 1)),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
        "loss_fn": binary_cross_entropy,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
    }


if __name__ == "__main__":
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(30):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
