# EXPECT: numerical-instability
# A CNN embedding for scikit-learn's 8x8 digits trained with a contrastive loss over all pairs in the batch.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class EmbeddingCNN(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, dim),
        )

    def forward(self, x):
        return self.net(x)


def contrastive_loss(emb, labels, margin=1.0):
    dist = torch.sqrt(((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1))
    same = (labels[:, None] == labels[None, :]).float()
    return (same * dist ** 2 + (1 - same) * F.relu(margin - dist) ** 2).mean()


def make_dataset():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    X = (X - X.mean()) / X.std()
    return TensorDataset(X, torch.tensor(y))


def dldoctor_spec(lr=1e-3, batch_size=64):
    return {
        "model": EmbeddingCNN,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": contrastive_loss,
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "task": "other",
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
