# EXPECT: healthy
# An MLP with a softmax output on scikit-learn's breast-cancer data, trained with a hand-written focal loss.
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class ProbNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, hidden), nn.ReLU(), nn.Linear(hidden, 2), nn.Softmax(dim=1))

    def forward(self, x):
        return self.net(x)


def focal_loss(probs, target, gamma=2.0):
    p_true = probs.gather(1, target.view(-1, 1)).squeeze(1).clamp(1e-7, 1.0)
    return (-(1 - p_true) ** gamma * torch.log(p_true)).mean()


def make_dataset():
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    return TensorDataset(X, torch.tensor(y))


def dldoctor_spec(lr=1e-2, batch_size=32):
    return {
        "model": ProbNet,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": focal_loss,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "classification",
        "num_classes": 2,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
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
