"""Do the labels carry a signal the model can learn from the inputs?"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from dldoctor.api import Check, Severity, Stage, keys
from dldoctor.api.measure import Setup, batch_size_of, experiments


def _tail(losses) -> float:
    tail = list(losses)[-max(3, len(losses) // 10):]
    return statistics.median(tail) if tail else float("nan")


def heldout_advantage(real: float | None, references: Sequence[float | None], samples: int, metric: str,
                      z: float) -> tuple[float, float] | None:
    """How much better the real-label model scores on ``samples`` held-out samples than the
    best of ``references`` (scores of no signal), and the margin it must beat to count:
    ``z`` standard errors of that reference score.

    The references are the best constant prediction for the held-out samples (their own
    majority class or mean: no input-independent predictor does better) and the
    permuted-label model's score (a model of shuffled labels beats no constant in
    expectation, only by luck). Beating the best of them by more than the held-out noise
    is signal. Accuracy: a one-sample binomial test at the reference rate (one success
    and one failure added, so a rate of 0 or 1 still has a spread). MSE: with roughly
    Gaussian residuals an MSE over n samples has a relative standard error of
    sqrt(2 / n); the advantage is log(reference MSE / model MSE). None when a score is
    missing.
    """
    known = [r for r in references if r is not None and math.isfinite(r)]
    if real is None or not known or samples < 2 or not math.isfinite(real):
        return None
    if metric == "accuracy":
        best = max(known)
        rate = (best * samples + 1) / (samples + 2)
        return real - best, z * math.sqrt(rate * (1 - rate) / samples)
    best = min(known)
    if real <= 0 or best <= 0:
        return (math.inf if real < best else 0.0), z * math.sqrt(2 / samples)
    return math.log(best / real), z * math.sqrt(2 / samples)


def reached_chance(curve, metric: str) -> bool | None:
    """Whether a run fitted its training batches at least as well as an input-independent
    predictor does (the class frequencies or the mean): None when unknown. A run that has
    not learned even that much in its budget says nothing about the labels."""
    chance = curve.train_chance
    if chance is None or not curve.metric:
        return None
    fitted = _tail(curve.metric)
    return fitted >= chance if metric == "accuracy" else fitted <= chance


class LabelSignalCheck(Check):
    """The labels match the inputs: real labels are learned faster than shuffled ones, and generalise.

    One batch can be memorised even with wrong labels, so a fitted batch proves
    little. After the baseline fit, the model is evaluated on another batch: above
    chance (the majority class, or the mean for regression) means the labels carry
    signal, and nothing more runs. Otherwise the model trains on several batches
    with the real labels and with labels permuted across samples: if the real ones
    are learned no faster, the labels do not depend on the inputs (shuffled
    separately, misaligned, a wrong mapping), and with inputs zeroed the run tells
    whether the model sees its inputs at all. Equal training losses alone are not
    enough: a model large enough memorises shuffled labels as fast as real ones. Both
    runs are therefore also scored on as many held-out training samples (batch-norm
    statistics recomputed over the batches trained on, not left at their initial
    values): real labels that predict them better than shuffled ones, by more than two
    standard errors of the held-out score, carry signal and nothing is reported. The
    held-out reference is the best constant prediction for those samples, or the
    permuted-label model's score if higher (no model of shuffled labels beats a constant
    in expectation); and runs that do not even fit their batches as well as that predictor
    (a regression head still far off the targets' scale) cannot judge the labels. When the single-batch fit fails for a
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
        n_batches = self._batches(ctx, cfg)
        steps = int(cfg["steps"])
        real = experiments.run(ctx, Setup(batches=n_batches), steps, heldout=True)
        permuted = experiments.run(ctx, Setup(batches=n_batches, permute_labels=True), steps, heldout=True)
        real_final, perm_final = _tail(real.losses), _tail(permuted.losses)
        if not real_final < float(cfg["real_vs_permuted"]) * perm_final:
            # A model large enough memorises shuffled labels as fast as real ones, so equal
            # training losses do not show the labels are noise: held-out samples do. Real
            # labels that predict them better than shuffled ones carry signal.
            heldout = heldout_advantage(real.heldout_metric, (real.heldout_constant, permuted.heldout_metric),
                                        real.heldout_samples, real.metric_name, float(cfg["heldout_z"]))
            signal = heldout is not None and heldout[0] > heldout[1]
            # Signal or not, a step too large to learn across batches shows as a smaller rate
            # training the real labels better (the Elman regression of the zoo: 0.43 at lr/10
            # against 0.77, its held-out score above the mean's). With signal shown the smaller
            # rate must train them clearly better, by the real-vs-permuted ratio.
            control = self._learning_rate_control(ctx, cfg, base, n_batches, real_final, perm_final,
                                                  margin=float(cfg["real_vs_permuted"]) if signal else 1.0)
            if control is not None:
                return [control]
            if signal:
                return []
            if reached_chance(real, real.metric_name) is False:
                return []  # not even the label frequencies / mean learned: the runs cannot judge the labels
            zeroed = experiments.run(ctx, Setup(batches=n_batches, zero_inputs=True), steps)
            zero_final = _tail(zeroed.losses)
            name = base.metric_name
            evidence = [
                f"after fitting one batch, held-out {name} {base.heldout_metric:.3g} vs {base.heldout_chance:.3g} "
                f"for an input-independent predictor",
                f"{steps} steps on {n_batches} batches: loss {real_final:.4g} with the real labels, "
                f"{perm_final:.4g} with labels permuted across samples: the real labels are no easier to learn",
            ]
            if heldout is not None:
                evidence.append(
                    f"on {real.heldout_samples} held-out samples after those runs: {name} {real.heldout_metric:.3g} "
                    f"with the real labels, {permuted.heldout_metric:.3g} with permuted ones and "
                    f"{real.heldout_constant:.3g} for the best constant prediction: the real labels generalise no "
                    f"better than no inputs at all (a real signal would show by more than {heldout[1]:.3g})")
            evidence += [
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
                         "loss_zero_inputs": zero_final,
                         **({"heldout_real_labels": real.heldout_metric,
                             "heldout_permuted_labels": permuted.heldout_metric,
                             "heldout_samples": real.heldout_samples} if heldout is not None else {})},
                location="data",
            )]
        return []

    @staticmethod
    def _batches(ctx, cfg) -> int:
        """Batches of the several-batch runs: ``label_signal.batches``, or more when the loader's
        batches are small, so that the runs train on (and are scored on) at least
        ``label_signal.min_samples`` samples; but no more than half the training batches
        there are, so that as many remain held out."""
        least = int(cfg["batches"])
        first = experiments.overfit_batches(ctx, 1)
        size = max(1, batch_size_of(first[0]) or 1) if first else 1
        wanted = max(least, math.ceil(int(cfg["min_samples"]) / size))
        if wanted == least:
            return least
        available = len(experiments.overfit_batches(ctx, 2 * wanted))
        return max(least, min(wanted, available // 2))

    def _learning_rate_control(self, ctx, cfg, base, n_batches: int, real_final: float, perm_final: float,
                               margin: float = 1.0):
        """``lr-too-high`` when real labels are learned clearly faster than permuted ones at a
        smaller learning rate, though not at the user's, and the smaller rate ends the real-label
        run below ``margin`` times the user's rate's loss; None when not (the labels are then
        judged)."""
        scale = float(cfg["control_lr_scale"])
        steps = int(cfg["steps"])
        real = _tail(experiments.run(ctx, Setup(batches=n_batches, lr_scale=scale), steps).losses)
        if not real <= margin * real_final:
            return None  # the smaller rate trains no better: it is no cure, whatever its shuffled run does
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
