"""Out-of-sample class probabilities from the user's own model, trained k-fold for a short budget.

Used by the label-noise check in ``--profile thorough``: on inputs where a linear
model or nearest neighbours cannot judge labels (natural images), the user's network
can. Each fold trains a fresh copy of the model (the spec's optimiser, loss and
``forward``) on the other folds' rows, fetched by index from the training dataset
and collated as the loader collates them, then predicts the held-out rows. Only for
a DataLoader over a map-style dataset.

Each fold trains a fixed number of steps: ``epochs`` over its rows, fewer for an
expensive model (``max_gflop`` over all folds, the step's cost counted as for the
short training run), so the probabilities, and the label-noise verdict that reads
them, are the same on a fast machine and a busy one. ``max_seconds`` is only a
safety limit: reaching it raises ``CheckIncomplete``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.probes.data.models import fold_ids
from dldoctor.probes.data.sample import SplitSample, fetch_rows
from dldoctor.probes.training.short import step_gflop
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import iter_tensors, to_device


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


def fold_steps(fit_rows: int, batch_size: int, epochs: int, folds: int, max_gflop: float,
               gflop_per_step: float | None) -> int:
    """Training steps of one fold: ``epochs`` epochs over its ``fit_rows``, at most its
    share of ``max_gflop`` at ``gflop_per_step`` (at least one step)."""
    steps = epochs * max(1, math.ceil(fit_rows / max(1, batch_size)))
    if gflop_per_step and gflop_per_step > 0 and math.isfinite(max_gflop):
        steps = min(steps, int(max_gflop / folds // gflop_per_step))
    return max(1, steps)


def _read(ctx, loader, rows: np.ndarray, chunk_size: int):
    """Rows of the training dataset through the context's guarded reader (a deadline per item)."""
    return ctx.read("train", loader, source=lambda: fetch_rows(loader, rows, chunk_size), unit="item",
                    what="reading the train_loader")


def user_model_oof(ctx, train: SplitSample, positions: np.ndarray, classes: int, folds: int, epochs: int,
                   max_seconds: float, max_gflop: float = math.inf) -> np.ndarray | None:
    """Out-of-fold probabilities [len(positions), classes] from the user's model, or None when it cannot run.

    Raises:
        CheckIncomplete: the folds reached the safety limit (``max_seconds`` in all,
            or the running check's deadline) before their planned steps.
    """
    loader = ctx.loader("train")
    if not train.by_index or getattr(loader, "batch_size", None) is None:
        return None
    rows = train.rows[positions]
    fold = fold_ids(len(rows), folds, ctx.seed, train.class_labels[positions])
    out = np.full((len(rows), classes), np.nan, dtype=np.float32)
    batch_size = int(loader.batch_size)
    cost = step_gflop(ctx) if math.isfinite(max_gflop) else None
    loss_fn = ctx.spec.loss_fn
    began = time.perf_counter()
    slowest = 0.0

    def guard(f: int, done: int, planned: int) -> None:
        where = f"fold {f + 1} of {folds}, step {done} of {planned}"
        if time.perf_counter() - began > max_seconds:
            raise CheckIncomplete(
                f"training your model on the label-noise folds stopped at its safety limit of {max_seconds:g} s "
                f"at {where} (label_noise.user_model_max_seconds); the label-noise verdict would rest on "
                f"half-trained folds. Raise label_noise.user_model_max_seconds, or lower "
                f"label_noise.user_model_epochs / user_model_max_gflop.")
        if ctx.time_left() < max(5.0, 2 * slowest):
            timeout = ctx.config.get("run.check_timeout_s")
            raise CheckIncomplete(
                f"training your model on the label-noise folds stopped at the check's safety limit "
                f"(run.check_timeout_s = {timeout:g} s) at {where}. Raise run.check_timeout_s, or lower "
                f"label_noise.user_model_epochs / user_model_max_gflop.")

    with isolated_rng(ctx.seed):
        for f in range(folds):
            fit, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            planned = fold_steps(len(fit), batch_size, epochs, folds, max_gflop, cost)
            model = ctx.fresh_model()
            optimizer = ctx.make_optimizer(model)
            rng = np.random.default_rng(ctx.seed + f)
            try:
                # Epochs of reshuffled fold rows, as many as the planned steps need.
                batches = (batch for _ in range(math.ceil(planned / max(1, math.ceil(len(fit) / batch_size))))
                           for _, batch in _read(ctx, loader, rows[fit[rng.permutation(len(fit))]], batch_size))
                for done, batch in enumerate(batches):
                    guard(f, done, planned)
                    t0 = time.perf_counter()
                    optimizer.zero_grad(set_to_none=True)
                    outputs, targets = ctx.forward_fn(model, to_device(batch, ctx.device))
                    loss = loss_fn(outputs, targets)
                    if not torch.isfinite(loss):
                        return None
                    loss.backward()
                    optimizer.step()
                    slowest = max(slowest, time.perf_counter() - t0)
                    if done + 1 >= planned:
                        break
                model.eval()
                with torch.no_grad():
                    done = 0
                    for _, batch in _read(ctx, loader, rows[held], 256):
                        outputs, _ = ctx.forward_fn(model, to_device(batch, ctx.device))
                        probs = _probabilities(next(iter_tensors(outputs)), classes)
                        if probs is None:
                            return None
                        out[held[done:done + len(probs)]] = probs
                        done += len(probs)
            except (CheckIncomplete, EntrypointError):  # the user's data hung or raised: a finding of its own
                raise
            except Exception:  # the model's own failures are the other stages' business
                return None
    return None if np.isnan(out).any() else out
