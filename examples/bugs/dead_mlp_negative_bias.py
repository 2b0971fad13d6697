# EXPECT: dead-activations
# An MLP on scikit-learn's breast-cancer data (standardised) whose hidden layers start sparse.
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SparseMLP(nn.Module):
    def __init__(self, hidden=128, bias_init=-1.0):
        super().__init__()
        self.fc1 = nn.Linear(30, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2)
        self.act = nn.ReLU()
        for layer in (self.fc1, self.fc2):
            nn.init.constant_(layer.bias, bias_init)

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


def make_datasets():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    def to_ds(X, y):
        return TensorDataset(torch.tensor(scaler.transform(X), dtype=torch.float32), torch.tensor(y))
    return to_ds(X_train, y_train), to_ds(X_val, y_val)


def dldoctor_spec(lr=1e-3, hidden=128, batch_size=32):
    train, val = make_datasets()
    return {
        "model": lambda: SparseMLP(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=128),
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
        print(f"epoch {epoch}: loss {loss.item():.4f}")
