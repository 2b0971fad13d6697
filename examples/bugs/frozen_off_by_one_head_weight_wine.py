# EXPECT: no-gradient-flow
# An MLP on scikit-learn's wine data whose body is meant to stay fixed while the
# classifier trains. The loop freezes list(model.parameters())[:-1], one tensor short
# of the classifier's two (weight and bias): only the classifier's 3 biases train, so the
# model can only shift its logits by a constant (3 of 1,603 values train). Measured: the
# single batch does not fit as given (loss 1.10 -> 1.07, a plateau), while the same fit
# with every parameter trainable (fresh copy, same seed, same 200 steps) converges.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class WineNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(13, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.classifier(self.body(x))


def make_model():
    model = WineNet()
    for p in list(model.parameters())[:-1]:  # everything but the classifier (meant [:-2])
        p.requires_grad = False
    return model


def make_dataset():
    X, y = load_wine(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32)
    return TensorDataset((X - X.mean(0)) / X.std(0), torch.tensor(y))


def dldoctor_spec(lr=0.05):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=32, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD([p for p in params if p.requires_grad], lr=lr, momentum=0.9),
    }
