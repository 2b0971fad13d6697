# EXPECT: healthy
"""ViTForImageClassification from a tiny ViTConfig (random init) on scikit-learn's 8x8 digits.

The 8x8 digit images are enlarged to 16x16 (each pixel repeated 2x2) and standardised with
the training split's mean and standard deviation, then cut into 4x4 patches: 16 patches plus
the [CLS] token, two pre-LayerNorm encoder layers, a linear head on [CLS].

Why healthy: digits are an easy ten-class problem, the ViT defaults (truncated-normal(0, 0.02)
init, pre-LayerNorm, GELU) train from scratch with AdamW at 1e-3, and a plain loop goes from
~10% to ~84% validation accuracy in 300 steps and ~95% in 600.
The spec's forward feeds `pixel_values` and takes `.logits`.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import ViTConfig, ViTForImageClassification

SIDE = 16


def make_splits():
    images, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=0,
                                                      stratify=labels)
    mean, std = x_train.mean(), x_train.std()

    def to_tensor(x, y):
        x = torch.tensor((x - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 8x8 -> 16x16
        return TensorDataset(x, torch.tensor(y, dtype=torch.long))

    return to_tensor(x_train, y_train), to_tensor(x_val, y_val)


def build_model(hidden=48):
    config = ViTConfig(image_size=SIDE, patch_size=4, num_channels=1, hidden_size=hidden, num_hidden_layers=2,
                       num_attention_heads=3, intermediate_size=2 * hidden, num_labels=10)
    return ViTForImageClassification(config)


def forward(model, batch):
    pixels, labels = batch
    return model(pixel_values=pixels).logits, labels


def dldoctor_spec(lr=1e-3, batch_size=32, hidden=48):
    train, val = make_splits()
    return {
        "model": lambda: build_model(hidden),
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=180),
        "forward": forward,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.05),
    }
