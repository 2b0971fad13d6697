# EXPECT: healthy
# A batch-norm CNN on 16x16 synthetic grayscale images, SGD with momentum.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def conv_bn(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class BNNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(conv_bn(1, 16), nn.MaxPool2d(2), conv_bn(16, 32), nn.MaxPool2d(2),
                                      conv_bn(32, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def make_data(n, seed):
    g = torch.Generator().manual_seed(0)
    templates = torch.randn(10, 1, 16, 16, generator=g)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    shift = torch.randint(-2, 3, (n, 2), generator=g)
    images = torch.stack([torch.roll(templates[k], tuple(s.tolist()), dims=(1, 2)) for k, s in zip(labels, shift)])
    images = images + 0.5 * torch.randn(images.shape, generator=g)
    return TensorDataset(images / images.std(), labels)


def dldoctor_spec(lr=0.05, batch_size=64):
    return {
        "model": BNNet,
        "train_loader": DataLoader(make_data(1024, 1), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(make_data(256, 2), batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        model.train()
        for images, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(images), labels)
            loss.backward()
            optimizer.step()
        model.eval()
        images, labels = next(iter(spec["val_loader"]))
        with torch.no_grad():
            print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {(model(images).argmax(1) == labels).float().mean():.3f}")
