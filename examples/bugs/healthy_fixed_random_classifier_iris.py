# EXPECT: healthy
# An MLP on scikit-learn's iris data whose last layer is a fixed random projection
# ("fix your classifier": the output layer is frozen on purpose and left out of the
# optimiser), so the features learn to fit it. It tempts no-gradient-flow: the output
# layer, the usual suspect when a freeze goes too far, never trains. Measured: the model
# as given fits one batch, so the freeze does not hold it back.
import torch
from sklearn.datasets import load_iris
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class FixedHeadNet(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, 3, bias=False)
        nn.init.orthogonal_(self.classifier.weight)
        self.classifier.requires_grad_(False)

    def forward(self, x):
        return self.classifier(self.features(x))


def make_dataset():
    X, y = load_iris(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y))


def dldoctor_spec(lr=1e-2):
    return {
        "model": FixedHeadNet,
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=lr),
    }
