# EXPECT: vanishing-gradients
# A deep LeNet-style CNN with sigmoid activations on 16x16 synthetic grayscale images, SGD with Nesterov momentum.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def conv_block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.Sigmoid()]


def make_model(width=16, blocks=4):
    layers = conv_block(1, width)
    for i in range(blocks):
        layers += conv_block(width, width) + conv_block(width, width)
        if i < 2:
            layers.append(nn.AvgPool2d(2))
    layers += [nn.Flatten(), nn.Linear(width * 4 * 4, 10)]
    return nn.Sequential(*layers)


def make_dataset(n=1024):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 1, 16, 16, generator=g)
    templates = torch.randn(10, 16 * 16, generator=g)
    labels = (images.flatten(1) @ templates.T).argmax(dim=1)
    return TensorDataset(images, labels)


def dldoctor_spec(lr=0.05, batch_size=64):
    return {
        "model": make_model,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(5):
        for images, labels in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
