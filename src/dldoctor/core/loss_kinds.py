"""The standard losses, by module type name or function ``__name__``: the one table.

Each loss has a *kind*, what it expects as input, in the one vocabulary every reader
uses (the loss probe, the initialisation probe, the loss checks, the context's task
inference):

- ``logits``: unnormalised class scores, softmax applied inside (cross-entropy);
- ``log-probs``: log-probabilities (NLL, KL divergence);
- ``binary-logits``: scores of independent sigmoids (BCE with logits);
- ``probs``: probabilities (BCE);
- ``squared``, ``absolute``: an element-wise regression error (MSE; L1, smooth L1, Huber).

and the *task* it implies (``classification``, ``regression``, or "" for none). A loss
whose kind the name does not tell has kind "" (its behaviour is measured instead).

No torch at import: the context and the probes import this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: Kinds of element-wise regression losses.
ELEMENTWISE = frozenset({"squared", "absolute"})
#: Kinds of classification losses over class scores or probabilities.
CLASS_SCORES = frozenset({"logits", "log-probs", "binary-logits", "probs"})


@dataclasses.dataclass(frozen=True)
class LossKind:
    """What a standard loss expects (``kind``) and the task it implies (``task``)."""

    kind: str
    task: str


_CLASSIFICATION, _REGRESSION = "classification", "regression"

#: Loss name (module type name or function ``__name__``) -> its kind and task.
LOSSES: dict[str, LossKind] = {
    "CrossEntropyLoss": LossKind("logits", _CLASSIFICATION),
    "cross_entropy": LossKind("logits", _CLASSIFICATION),
    "NLLLoss": LossKind("log-probs", _CLASSIFICATION),
    "nll_loss": LossKind("log-probs", _CLASSIFICATION),
    # Its targets are distributions, not classes: it implies no task.
    "KLDivLoss": LossKind("log-probs", ""),
    "kl_div": LossKind("log-probs", ""),
    "BCEWithLogitsLoss": LossKind("binary-logits", _CLASSIFICATION),
    "binary_cross_entropy_with_logits": LossKind("binary-logits", _CLASSIFICATION),
    "BCELoss": LossKind("probs", _CLASSIFICATION),
    "binary_cross_entropy": LossKind("probs", _CLASSIFICATION),
    # Multi-label scores: a classification loss whose input the probe measures.
    "MultiLabelSoftMarginLoss": LossKind("", _CLASSIFICATION),
    "MSELoss": LossKind("squared", _REGRESSION),
    "mse_loss": LossKind("squared", _REGRESSION),
    "L1Loss": LossKind("absolute", _REGRESSION),
    "l1_loss": LossKind("absolute", _REGRESSION),
    "SmoothL1Loss": LossKind("absolute", _REGRESSION),
    "smooth_l1_loss": LossKind("absolute", _REGRESSION),
    "HuberLoss": LossKind("absolute", _REGRESSION),
    "huber_loss": LossKind("absolute", _REGRESSION),
}


def loss_name(loss_fn: Any) -> str:
    """The loss's module type name or function ``__name__`` (as the forward trace records it)."""
    from torch import nn

    return type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else getattr(loss_fn, "__name__", "")


def kind_of(name: str) -> str:
    """The kind of the loss called ``name`` ("" when the name does not tell)."""
    entry = LOSSES.get(name)
    return entry.kind if entry else ""


def task_of(name: str) -> str:
    """The task the loss called ``name`` implies ("" when none)."""
    entry = LOSSES.get(name)
    return entry.task if entry else ""
