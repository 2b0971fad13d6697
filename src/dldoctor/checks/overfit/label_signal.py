"""Do the labels carry a signal the model can learn from the inputs?"""

from __future__ import annotations

import statistics

from dldoctor.api import Check, Severity, Stage, keys
from dldoctor.api.measure import Setup, experiments


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
    reason the overfit-batch check found (its published ``SINGLE_BATCH_FIT``, hence
    ``after``), the labels are not judged.

    Before the labels are blamed, the pair of runs is repeated at a tenth of the
    learning rate (``label_signal.control_lr_scale``): a step too large for several
    batches at once (a recurrent net at lr 0.05 with momentum fits one batch, with
    spikes, yet learns real and shuffled labels equally badly) makes clean labels look
    random. If the real labels are learned clearly faster there, the labels are fine
    and the learning rate is the cause (``lr-too-high``, with both pairs of numbers).
    """

    name = "label-signal"
    stage = Stage.OVERFIT
    order = 30
    after = ("overfit-batch",)
    requires = ("forward_pass",)
    emits = ("labels-corrupted", "lr-too-high")

    def run(self, ctx):
        if ctx.task not in ("classification", "regression"):
            return []
        cfg = ctx.config.section("label_signal")
        base = experiments.baseline(ctx)
        if base.heldout_metric is None or base.heldout_chance is None:
            return []
        fit = ctx.results.get(keys.SINGLE_BATCH_FIT)
        if fit is not None and fit.explained:
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
            control = self._learning_rate_control(ctx, cfg, base, real_final, perm_final)
            if control is not None:
                return [control]
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

    def _learning_rate_control(self, ctx, cfg, base, real_final: float, perm_final: float):
        """``lr-too-high`` when real labels are learned clearly faster than permuted ones at a
        smaller learning rate, though not at the user's; None when they are not (the labels
        are then judged)."""
        scale = float(cfg["control_lr_scale"])
        n_batches, steps = int(cfg["batches"]), int(cfg["steps"])
        real = _tail(experiments.run(ctx, Setup(batches=n_batches, lr_scale=scale), steps).losses)
        permuted = _tail(experiments.run(ctx, Setup(batches=n_batches, lr_scale=scale, permute_labels=True),
                                         steps).losses)
        if not real < float(cfg["real_vs_permuted"]) * permuted:
            return None
        lower = base.lr * scale
        return self.finding(
            "lr-too-high", Severity.ERROR, min(0.9, 0.5 + 0.5 * (1.0 - real / permuted)),
            title=f"the learning rate {base.lr:.3g} is too high to learn across batches: at {lower:.3g} the real "
                  "labels are learned, at the configured rate no better than shuffled ones",
            evidence=[
                f"{steps} steps on {n_batches} batches at lr={base.lr:.3g}: loss {real_final:.4g} with the real "
                f"labels, {perm_final:.4g} with labels permuted across samples",
                f"the same at lr={lower:.3g}: loss {real:.4g} with the real labels, {permuted:.4g} permuted: "
                "the labels carry signal the step size destroys",
            ],
            fixes=[f"Lower the learning rate to about {lower:.3g} (or run `dldoctor tune` for a range test).",
                   "Clip the gradient norm (grad_clip_norm in the spec, torch.nn.utils.clip_grad_norm_ in "
                   "your loop); recurrent nets need it most.",
                   "Add warm-up: start at a tenth of the rate and raise it over the first few hundred steps."],
            metrics={"lr": base.lr, "control_lr": lower, "loss_real_labels": real_final,
                     "loss_permuted_labels": perm_final, "control_loss_real_labels": real,
                     "control_loss_permuted_labels": permuted},
            location="optimizer",
        )
