# EXPECT: healthy
"""A hand-written ResNet (BatchNorm, residual blocks) on scikit-learn's 8x8 digits.

Stem: 3x3 convolution + BatchNorm + ReLU to 16 channels; then a basic residual block at
16 channels, a downsampling block to 32 channels (stride 2, 1x1 projection shortcut),
global average pooling and a linear head. Each block's last BatchNorm starts with a zero
scale ("zero-init residual", Goyal et al. 2017), so every block starts as the identity:
the standard trick that makes deep ResNets train from the first step. Pixels are
standardised with the training split's mean and standard deviation. SGD with Nesterov
momentum, weight decay and a cosine schedule, as for ResNets on ImageNet.

Why healthy: a plain loop goes from ~10% to above 95% validation accuracy within a few
hundred steps.
"""
import math

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_splits():
    images, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.25, random_state=0,
                                                      stratify=labels)
    mean, std = x_train.mean(), x_train.std()

    def to_tensor(x, y):
        return TensorDataset(torch.tensor((x - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8),
                             torch.tensor(y, dtype=torch.long))

    return to_tensor(x_train, y_train), to_tensor(x_val, y_val)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)  # zero-init residual: the block starts as the identity
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class DigitResNet(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(BasicBlock(width, width), BasicBlock(width, 2 * width, stride=2))
        self.head = nn.Linear(2 * width, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def dldoctor_spec(lr=0.05, batch_size=64, width=16, total_steps=400):
    train, val = make_splits()
    return {
        "model": lambda: DigitResNet(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=225),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4),
        "scheduler": lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))),
    }
