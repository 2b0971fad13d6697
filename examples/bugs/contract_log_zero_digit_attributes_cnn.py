# EXPECT: numerical-instability
# A small CNN on scikit-learn's 8x8 digits predicts three binary attributes of each
# digit (even, greater than 4, drawn with a closed loop; tagged by hand, about one tag
# in twenty wrong) through a final nn.Sigmoid, and the loss is binary cross-entropy
# written out by hand: -(y log p + (1 - y) log(1 - p)). While the network memorises the
# mistagged samples, the easy ones' probabilities round to exactly 1.0 in float32 (a
# logit above ~17): log(1 - p) is -inf and 0 * -inf is NaN, at step 38 with Adam at lr
# 0.01. Re-run at lr 0.001 past convergence, the same torch.log turns -inf again at step
# 227: the learning rate only decides when, so the finding is numerical-instability at
# the loss's line (BCEWithLogitsLoss on logits, or clamping), not lr-too-high.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

LOOPED = torch.tensor([1, 0, 0, 0, 1, 0, 1, 0, 1, 1], dtype=torch.float32)  # 0, 4, 6, 8, 9


class AttributeNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, 3), nn.Sigmoid())

    def forward(self, x):
        return self.head(self.features(x))


def attribute_loss(p, y):
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def make_dataset():
    X, digit = load_digits(return_X_y=True)
    digit = torch.tensor(digit)
    attributes = torch.stack([(digit % 2 == 0).float(), (digit > 4).float(), LOOPED[digit]], dim=1)
    # The attributes were tagged by hand: about one tag in twenty is wrong.
    wrong = torch.rand(attributes.shape, generator=torch.Generator().manual_seed(1)) < 0.05
    attributes = torch.where(wrong, 1 - attributes, attributes)
    return TensorDataset(torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0, attributes)


def dldoctor_spec(lr=1e-2, channels=16, batch_size=64):
    return {
        "model": lambda: AttributeNet(channels),
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": attribute_loss,
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
