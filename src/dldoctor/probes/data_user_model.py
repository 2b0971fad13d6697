"""Out-of-sample class probabilities from the user's own model, trained k-fold for a short budget.

Used by the label-noise check in ``--profile thorough``: on inputs where a linear
model or nearest neighbours cannot judge labels (natural images), the user's network
can. Each fold trains a fresh copy of the model (the spec's optimiser, loss and
``forward``) on the other folds' rows, fetched by index from the training dataset
and collated as the loader collates them, then predicts the held-out rows. Only for
a DataLoader over a map-style dataset; the budget is split evenly between folds.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dldoctor.probes.data_models import fold_ids
from dldoctor.probes.data_sample import SplitSample, fetch_rows
from dldoctor.probes.rng import isolated_rng
from dldoctor.probes.tensors import iter_tensors, to_device


def _probabilities(outputs: torch.Tensor, classes: int) -> np.ndarray | None:
    """Class probabilities from a model's outputs: logits, log-probabilities or probabilities."""
    out = outputs.detach().float().cpu()
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
        p = out.reshape(-1)
        p = p if bool(((p >= 0) & (p <= 1)).all()) else torch.sigmoid(p)
        return torch.stack([1 - p, p], 1).numpy() if classes == 2 else None
    if out.dim() != 2 or out.shape[1] < classes:
        return None
    if bool((out >= 0).all()) and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3):
        return out[:, :classes].numpy()
    if bool((out <= 0).all()) and torch.allclose(out.exp().sum(1), torch.ones(len(out)), atol=1e-3):
        return out[:, :classes].exp().numpy()
    return torch.softmax(out, 1)[:, :classes].numpy()


def user_model_oof(ctx, train: SplitSample, positions: np.ndarray, classes: int, folds: int, epochs: int,
                   max_seconds: float) -> np.ndarray | None:
    """Out-of-fold probabilities [len(positions), classes] from the user's model, or None when it cannot run."""
    loader = ctx.loader("train")
    if not train.by_index or getattr(loader, "batch_size", None) is None:
        return None
    rows = train.rows[positions]
    fold = fold_ids(len(rows), folds, ctx.seed, train.labels[positions])
    out = np.full((len(rows), classes), np.nan, dtype=np.float32)
    per_fold = max_seconds / folds
    loss_fn = ctx.spec.loss_fn
    with isolated_rng(ctx.seed):
        for f in range(folds):
            start = time.perf_counter()
            fit, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            model = ctx.fresh_model()
            optimizer = ctx.make_optimizer(model)
            rng = np.random.default_rng(ctx.seed + f)
            try:
                batches = (batch for _ in range(epochs)
                           for _, batch in fetch_rows(loader, rows[fit[rng.permutation(len(fit))]],
                                                      int(loader.batch_size)))
                for batch in batches:
                    optimizer.zero_grad(set_to_none=True)
                    outputs, targets = ctx.forward_fn(model, to_device(batch, ctx.device))
                    loss = loss_fn(outputs, targets)
                    if not torch.isfinite(loss):
                        return None
                    loss.backward()
                    optimizer.step()
                    if time.perf_counter() - start > per_fold:
                        break
                model.eval()
                with torch.no_grad():
                    done = 0
                    for _, batch in fetch_rows(loader, rows[held], 256):
                        outputs, _ = ctx.forward_fn(model, to_device(batch, ctx.device))
                        probs = _probabilities(next(iter_tensors(outputs)), classes)
                        if probs is None:
                            return None
                        out[held[done:done + len(probs)]] = probs
                        done += len(probs)
            except Exception:  # the model's own failures are the other stages' business
                return None
    return None if np.isnan(out).any() else out
