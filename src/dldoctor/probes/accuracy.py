"""Classification hits, counted the way the loss counts its targets."""

from __future__ import annotations

import torch


def correct_share(out: torch.Tensor, tgt: torch.Tensor, ignore_index: int | None = None) -> tuple[float, float]:
    """Classification hits in a batch, counted per sample: ``(sum of each sample's share of
    correct predictions, samples with anything to predict)``.

    A sample may hold one label, a label per position (a sequence, a segmentation map) or
    one 0/1 label per class (multi-label). Targets equal to the loss's ``ignore_index``
    (padding, -100; any negative index where the loss names none) are not counted, nor is a
    sample with no counted target.
    """
    n = out.shape[0] if out.dim() else 1
    if out.dim() >= 2 and out.shape[1] > 1:
        if tgt.shape == out.shape and tgt.is_floating_point():
            if bool(((tgt == 0) | (tgt == 1)).all()):  # one 0/1 label per class
                threshold = 0.5 if float(out.min()) >= 0 and float(out.max()) <= 1 else 0.0
                hits = (out > threshold).float() == tgt
            else:  # soft targets: the most probable class
                hits = out.argmax(dim=1) == tgt.argmax(dim=1)
            counted = torch.ones_like(hits)
        else:
            pred = out.argmax(dim=1)
            if pred.shape != tgt.shape:
                return 0.0, 0.0
            # no loss counts a negative class index unless it is its ignore_index (-100 by default)
            counted = tgt != ignore_index if ignore_index is not None else tgt >= 0
            hits = (pred == tgt) & counted
    else:
        threshold = 0.5 if float(out.min()) >= 0 and float(out.max()) <= 1 else 0.0
        if out.numel() != tgt.numel():
            return 0.0, 0.0
        hits = ((out.reshape(-1) > threshold).float() == tgt.reshape(-1).float()).reshape(n, -1)
        counted = torch.ones_like(hits)
    per_sample = counted.reshape(n, -1).float().sum(1)
    share = hits.reshape(n, -1).float().sum(1) / per_sample.clamp_min(1)
    return float(share.sum()), float((per_sample > 0).sum())
