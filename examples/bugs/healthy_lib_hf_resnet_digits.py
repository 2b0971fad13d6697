# EXPECT: healthy
"""ResNetForImageClassification from a tiny ResNetConfig (random init) on scikit-learn's digits.

The 8x8 digits are enlarged to 32x32 (each pixel repeated 4x4) and standardised with the
training split's statistics. The Hugging Face ResNet keeps its ImageNet-style stem (7x7
convolution, stride 2, then a 3x3 max-pool, stride 2) so the stages see 8x8 feature maps;
two stages of one basic block each (16 and 32 channels) with BatchNorm, then global
average pooling and a linear head.

Why healthy: BatchNorm residual networks with Kaiming init train well with SGD + Nesterov
momentum; a plain loop goes from ~10% to well above 90% validation accuracy. The spec's
forward feeds `pixel_values` and takes `.logits`.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import ResNetConfig, ResNetForImageClassification

SCALE = 4  # 8x8 -> 32x32


def make_splits():
    images, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=1,
                                                      stratify=labels)
    mean, std = x_train.mean(), x_train.std()

    def to_tensor(x, y):
        x = torch.tensor((x - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)
        x = x.repeat_interleave(SCALE, dim=2).repeat_interleave(SCALE, dim=3)
        return TensorDataset(x, torch.tensor(y, dtype=torch.long))

    return to_tensor(x_train, y_train), to_tensor(x_val, y_val)


def build_model(width=16):
    config = ResNetConfig(num_channels=1, embedding_size=width, hidden_sizes=[width, 2 * width], depths=[1, 1],
                          layer_type="basic", downsample_in_first_stage=False, num_labels=10)
    return ResNetForImageClassification(config)


def forward(model, batch):
    pixels, labels = batch
    return model(pixel_values=pixels).logits, labels


def dldoctor_spec(lr=0.05, batch_size=32, width=16):
    train, val = make_splits()
    return {
        "model": lambda: build_model(width),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=180),
        "forward": forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4),
    }
