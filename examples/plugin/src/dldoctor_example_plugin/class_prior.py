"""``class-prior-at-init``: does the freshly initialised model start from the class frequencies?

On an imbalanced classification task, a model whose output bias is left at its default
predicts roughly uniform classes at step 0. The cross-entropy it starts from is then
higher than that of simply predicting the class frequencies by

    KL(p || q) = sum_c p_c log(p_c / q_c)   (nats)

where ``p`` is the label distribution and ``q`` the model's mean predicted distribution
(the mean of softmax, or of sigmoid for one logit). While the logits hardly depend on
the input (as at initialisation), this is exactly the part of the initial loss that the
output bias alone can remove; the first optimiser steps spend themselves learning it
(the "hockey stick" of the loss curve) and the early gradients mostly push the bias.
Setting the bias to ``log p`` (``log(p / (1 - p))`` for one logit) removes it at no cost.

Threshold: 0.1 nats is a 72/28 binary split against a 50/50 prediction (or 60/20/20
against uniform thirds). The estimate's own sampling bias, about (C - 1) / (2 n) nats
for n labels, is far below it for the few hundred labels read by default.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from dldoctor.api import Check, CheckContext, DiagnosisInfo, Finding, Key, Range, Severity, Stage

ID = "init-ignores-class-prior"
SECTION = "class_prior_init"

#: The measurement, memoised on the context under a typed key of the plugin's own.
PRIOR: Key[dict[str, Any] | None] = Key("class_prior_init:prior", "label counts and mean predicted distribution")


def _measure(ctx: CheckContext, batches: int) -> dict[str, Any] | None:
    """Label counts and the mean predicted distribution of a fresh model, or None when the
    outputs are not class scores of shape (N, C) or (N,)/(N, 1) with 0/1 targets."""
    import torch

    model = ctx.fresh_model()
    counts: torch.Tensor | None = None
    prob_sum: torch.Tensor | None = None
    n = 0
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)  # dropout at init: the same draw every run
        for batch in ctx.batches("train", batches):
            outputs, targets = ctx.forward_fn(model, batch)
            if not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
                return None
            outputs, targets = outputs.detach().float(), targets.detach()
            if outputs.dim() == 2 and outputs.shape[1] >= 2 and targets.dim() == 1 and not targets.is_floating_point():
                probs = torch.softmax(outputs, dim=1)
                labels = targets.long()
            elif (outputs.dim() == 1 or (outputs.dim() == 2 and outputs.shape[1] == 1)) \
                    and targets.numel() == outputs.shape[0] and bool(((targets == 0) | (targets == 1)).all()):
                p1 = torch.sigmoid(outputs.reshape(-1))
                probs = torch.stack([1 - p1, p1], dim=1)
                labels = targets.reshape(-1).long()
            else:
                return None
            classes = probs.shape[1]
            if labels.numel() != probs.shape[0] or labels.min() < 0 or labels.max() >= classes:
                return None
            batch_counts = torch.bincount(labels.cpu(), minlength=classes).double()
            counts = batch_counts if counts is None else counts + batch_counts
            batch_probs = probs.double().sum(dim=0).cpu()
            prob_sum = batch_probs if prob_sum is None else prob_sum + batch_probs
            n += int(labels.numel())
    if counts is None or prob_sum is None or n == 0:
        return None
    return {"counts": counts.tolist(), "mean_probs": (prob_sum / n).tolist(), "samples": n}


def kl_nats(prior: list[float], predicted: list[float]) -> float:
    """KL(prior || predicted) in nats (classes absent from ``prior`` contribute nothing)."""
    return sum(p * math.log(p / max(q, 1e-12)) for p, q in zip(prior, predicted) if p > 0)


class ClassPriorAtInit(Check):
    """Compares the training labels' class frequencies with the freshly initialised model's mean prediction."""

    name = "class-prior-at-init"
    stage = Stage.RUN
    requires = ("forward_pass", "classification")
    order = 160
    catalogue: ClassVar[dict[str, DiagnosisInfo]] = {
        ID: DiagnosisInfo(
            title="The output layer starts far from the class frequencies",
            explanation=(
                "The classes are imbalanced, but at initialisation the model predicts them about equally "
                "often. The starting cross-entropy is then higher than that of just predicting the class "
                "frequencies, by KL(class frequencies || mean prediction) nats, and the first optimiser steps "
                "are spent learning the output bias rather than features: the loss curve starts with a "
                "'hockey stick' and the early gradients are dominated by the bias. Initialising the output "
                "bias to the log class frequencies removes that part of the loss before training starts."
            ),
            evidence=(
                "the class frequencies of the first training batches",
                "the mean predicted class distribution of the freshly initialised model on them",
                "KL(frequencies || mean prediction) in nats, against class_prior_init.max_kl_nats",
            ),
            fixes=(
                "Initialise the last layer's bias to the log class frequencies: "
                "model.head.bias.data = torch.log(class_freq) (softmax over C logits).",
                "With a single logit and BCEWithLogitsLoss, set the bias to log(p / (1 - p)) for a positive "
                "rate p (and consider pos_weight for the imbalance itself).",
                "If the imbalance is not real (a sampler or a filtering bug), fix the data instead.",
            ),
        ),
    }
    config: ClassVar[dict[str, dict[str, Any]]] = {
        SECTION: {
            "max_kl_nats": (0.1, Range(min=0, min_inclusive=False, note="nats")),
            "batches": (4, Range(min=1, note="training batches")),
        },
    }

    def run(self, ctx: CheckContext) -> list[Finding]:
        settings = ctx.config.section(SECTION)
        limit = float(settings["max_kl_nats"])
        stats = ctx.measure(PRIOR, lambda: _measure(ctx, int(settings["batches"])))
        if stats is None:
            return []  # not class scores this check can read: nothing to judge
        n, counts, predicted = stats["samples"], stats["counts"], stats["mean_probs"]
        classes = len(counts)
        if n < 5 * classes:
            return []  # too few labels to estimate the frequencies
        prior = [c / n for c in counts]
        kl = kl_nats(prior, predicted)
        if kl <= limit:
            return []

        def show(dist: list[float]) -> str:
            shown = ", ".join(f"{x:.2f}" for x in dist[:8])
            return f"[{shown}{', ...' if len(dist) > 8 else ''}]"

        confidence = min(0.95, 0.6 + 0.35 * min(1.0, (kl - limit) / limit))
        return [self.finding(
            ID, Severity.WARNING, confidence,
            title=f"The model starts {kl:.2f} nats above predicting the class frequencies",
            evidence=[
                f"class frequencies over {n} training labels: {show(prior)}",
                f"mean prediction of the freshly initialised model: {show(predicted)}",
                f"KL(frequencies || prediction) = {kl:.3f} nats > class_prior_init.max_kl_nats = {limit:g}",
            ],
            metrics={"kl_nats": kl, "max_kl_nats": limit, "samples": n, "classes": classes,
                     "largest_class_share": max(prior)},
            location="output layer",
        )]
