"""Do the labels carry a signal the model can learn from the inputs?"""

from __future__ import annotations

import statistics

from dldoctor.checks.overfit import experiments
from dldoctor.core.check import Check
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage
from dldoctor.probes.overfit import Setup


def _tail(losses) -> float:
    tail = list(losses)[-max(3, len(losses) // 10):]
    return statistics.median(tail) if tail else float("nan")


class LabelSignalCheck(Check):
    """The labels match the inputs: real labels are learned faster than shuffled ones, and generalise.

    One batch can be memorised even with wrong labels, so a fitted batch proves
    little. After the baseline fit, the model is evaluated on another batch: above
    chance (the majority class, or the mean for regression) means the labels carry
    signal, and nothing more runs. Otherwise the model trains on several batches
    with the real labels and with labels permuted across samples: if the real ones
    are learned no faster, the labels do not depend on the inputs (shuffled
    separately, misaligned, a wrong mapping), and with inputs zeroed the run tells
    whether the model sees its inputs at all. When the single-batch fit fails for a
    reason the overfit check found, the labels are not judged.
    """

    name = "label-signal"
    stage = Stage.OVERFIT
    order = 30
    requires = ("forward_pass",)
    emits = ("labels-corrupted",)

    def run(self, ctx):
        if ctx.task not in ("classification", "regression"):
            return []
        cfg = ctx.config.section("label_signal")
        base = experiments.baseline(ctx)
        if base.heldout_metric is None or base.heldout_chance is None:
            return []
        if experiments.reading(ctx, base).shape != "converged" and any(
                f.check == "overfit-batch" for f in ctx.findings):
            return []  # the fit itself is broken for a known reason: labels cannot be judged through it
        better = (base.heldout_metric - base.heldout_chance if base.metric_name == "accuracy"
                  else (base.heldout_chance - base.heldout_metric) / max(base.heldout_chance, 1e-12))
        if better > float(cfg["heldout_margin"]):
            return []
        n_batches = int(cfg["batches"])
        steps = int(cfg["steps"])
        real = experiments.run(ctx, Setup(batches=n_batches), steps)
        permuted = experiments.run(ctx, Setup(batches=n_batches, permute_labels=True), steps)
        real_final, perm_final = _tail(real.losses), _tail(permuted.losses)
        if not real_final < float(cfg["real_vs_permuted"]) * perm_final:
            zeroed = experiments.run(ctx, Setup(batches=n_batches, zero_inputs=True), steps)
            zero_final = _tail(zeroed.losses)
            name = base.metric_name
            evidence = [
                f"after fitting one batch, held-out {name} {base.heldout_metric:.3g} vs {base.heldout_chance:.3g} "
                f"for an input-independent predictor",
                f"{steps} steps on {n_batches} batches: loss {real_final:.4g} with the real labels, "
                f"{perm_final:.4g} with labels permuted across samples: the real labels are no easier to learn",
                f"with every input zeroed the loss reaches {zero_final:.4g}"
                + (" too: the model does not use its inputs (an input pipeline bug?)"
                   if zero_final <= real_final * 1.1 else ""),
            ]
            ratio = real_final / perm_final if perm_final else 1.0
            return [self.finding(
                "labels-corrupted", Severity.ERROR, min(0.95, 0.6 + 0.3 * min(1.0, ratio)),
                title="the labels do not depend on the inputs: real labels are learned no faster than shuffled ones",
                evidence=evidence,
                metrics={"heldout_metric": base.heldout_metric, "heldout_chance": base.heldout_chance,
                         "loss_real_labels": real_final, "loss_permuted_labels": perm_final,
                         "loss_zero_inputs": zero_final},
                location="data",
            )]
        return []
