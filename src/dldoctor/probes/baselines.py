"""Simple baselines on the same splits: the majority class / mean, and a linear model.

A model that cannot beat these has a bug (or has not trained at all). The linear
model is fitted with full-batch Adam on the flattened, standardised inputs, capped
to a number of samples.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from dldoctor.core.context import restored_generators, unpack_batch
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import iter_tensors, to_device


@dataclasses.dataclass(frozen=True)
class BaselineScores:
    """Validation errors of the baselines (same definition of error as the short run)."""

    constant: float | None
    constant_name: str
    linear: float | None
    train_samples: int


def _collect(ctx, split: str, loader, max_samples: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    xs, ys = [], []
    n = 0
    if loader is None:
        return None, None
    with isolated_rng(ctx.seed), restored_generators(loader):
        for batch in ctx.read(split, loader):
            batch = to_device(batch, ctx.device)
            inputs, targets = unpack_batch(batch)
            x = next(iter_tensors(inputs), None)
            y = next(iter_tensors(targets), None)
            if x is None or y is None:
                return None, None
            xs.append(x.reshape(x.shape[0], -1))
            ys.append(y)
            n += x.shape[0]
            if n >= max_samples:
                break
    if not xs:
        return None, None
    return torch.cat(xs)[:max_samples], torch.cat(ys)[:max_samples]


def baselines(ctx, max_samples: int, linear_steps: int) -> BaselineScores | None:
    """Baseline errors on validation; None when the batches are not (inputs, targets) pairs."""
    if ctx.spec.forward is not None:
        return None
    task = ctx.task
    constant: float | None
    x_train, y_train = _collect(ctx, "train", ctx.loader("train"), max_samples)
    x_val, y_val = _collect(ctx, "val", ctx.loader("val"), max_samples)
    if x_train is None or x_val is None or y_train is None or y_val is None:  # (all four or none)
        return None
    if task == "classification" and not y_train.is_floating_point():
        values, counts = torch.unique(y_train.reshape(-1), return_counts=True)
        majority = values[counts.argmax()]
        constant = float((y_val.reshape(-1) != majority).float().mean())
        name = f"majority class ({int(majority)})"
    elif task == "regression":
        mean, var = y_train.float().mean(), y_train.float().var()
        constant = float(((y_val.float() - mean) ** 2).mean() / var) if var > 0 else None
        name = "mean predictor"
    else:
        return None
    linear = None
    if x_train.is_floating_point():
        linear = _linear(ctx, task, x_train.float(), y_train, x_val.float(), y_val, linear_steps)
    return BaselineScores(constant, name, linear, int(x_train.shape[0]))


def _linear(ctx, task, x, y, xv, yv, steps: int) -> float | None:
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x, xv = (x - mean) / std, (xv - mean) / std
    with isolated_rng(ctx.seed), torch.enable_grad():
        if task == "classification":
            classes = int(max(int(y.max()), int(yv.max())) + 1)
            if y.dim() != 1 or classes < 2:
                return None
            layer = nn.Linear(x.shape[1], classes).to(x.device)
            loss_fn: nn.Module = nn.CrossEntropyLoss()
            target = y.long()
        else:
            layer = nn.Linear(x.shape[1], 1 if y.dim() == 1 else y.shape[1]).to(x.device)
            loss_fn = nn.MSELoss()
            target = y.float().reshape(y.shape[0], -1)
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
        for _ in range(steps):
            optimizer.zero_grad()
            out = layer(x)
            loss_fn(out if task == "classification" else out.reshape(target.shape), target).backward()
            optimizer.step()
    with torch.no_grad():
        out = layer(xv)
        if task == "classification":
            return float((out.argmax(1) != yv.long()).float().mean())
        var = y.float().var()
        return float(((out.reshape(-1) - yv.float().reshape(-1)) ** 2).mean() / var) if var > 0 else None
