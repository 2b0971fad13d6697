"""Differential diagnosis on the short training run: rerun it with one change, rank what cures it."""

from __future__ import annotations

import torch

from dldoctor.api import Check, Severity, Stage, keys
from dldoctor.api.measure import baselines, regularization, unpack_batch, variants
from dldoctor.api.measure import training as training_run
from dldoctor.api.read import shortfall

#: What each confirmed cause says to do, first fix first.
_FIXES = {
    "lr-too-low": ["Raise the learning rate: {label}, the same run ends at {better} instead of {worse}.",
                   "For a regression target on a large scale, standardise the targets (or start the output "
                   "bias at their mean): the step size then suits the target without a larger rate.",
                   "Run dldoctor tune --lr-range to pick the rate from a range test."],
    "lr-too-high": ["Lower the learning rate: {label}, the same run ends at {better} instead of {worse}.",
                    "Or keep it and add a warm-up and a decay (a scheduler), or clip the gradient norm.",
                    "Run dldoctor tune --lr-range to pick the rate from a range test."],
    "over-regularization": ["Lower the weight decay / dropout: with {label}, the same run ends at {better} "
                            "instead of {worse}.",
                            "Typical weight decay: 1e-4 to 1e-2 (AdamW), 1e-5 to 5e-4 (SGD); typical dropout "
                            "0.1 to 0.5."],
    "dead-activations": ["Remove the bounded activation after the last layer: with {label}, the same run ends "
                         "at {better} instead of {worse}.",
                         "Or rescale the targets into the activation's range {range} (and back for reports)."],
    "model-too-small": ["Use a larger model: with {label}, the same run ends at {better} instead of {worse}.",
                        "Widen the layers first (more units per layer), then add depth."],
}
_LOCATION = {"lr-too-low": "optimizer", "lr-too-high": "optimizer", "over-regularization": "optimizer"}


class TrainingExperimentsCheck(Check):
    """When the short run falls short, rerun it with one change each and report the change that cures it.

    The short run falls short when its training loss diverges after progress, when it
    does not beat the constant or linear baseline, or when its training error stays
    far above the irreducible error once it has stopped improving. Then the same run
    (same initial weights, data and steps) is repeated with the learning rate 10x
    lower, 10x higher, regularisation off, the bounded output activation removed
    when the targets reach outside its range, and with a larger model when the spec
    has a capacity argument (as the overfit stage finds it). A rerun that ends clearly
    better names the cause (``lr-too-high``, ``lr-too-low``, ``over-regularization``,
    ``dead-activations``, ``model-too-small``); the shortfall findings (``worse-than-baseline``,
    ``underfitting``) are then explained by it. Against a baseline the rerun must beat it,
    or still be improving fast enough to. A run whose training error is below its
    generalisation gap has fitted its data: only the lower learning rate is tried, as the
    other changes act by fitting the training data better (on digits with two rare classes
    a 10x rate "cured" a run at train error 0.03, val 0.22, that the rare classes held back).
    A run that falls short nowhere costs nothing; no rerun that cures it, no finding.
    """

    name = "training-experiments"
    stage = Stage.EVALUATE
    order = 20
    requires = ("forward_pass",)
    emits = ("lr-too-high", "lr-too-low", "over-regularization", "dead-activations", "model-too-small")

    def run(self, ctx):
        cfg = ctx.config.section("training_experiments")
        config = ctx.config.values
        run = training_run.main_run(ctx)
        main = shortfall.run_score(run)
        if main is None:
            return []
        scores = None
        if ctx.has_split("val"):
            section = ctx.config.section("baselines")
            scores = ctx.measure(keys.BASELINES, lambda: baselines(ctx, int(section["max_samples"]),
                                                                   int(section["linear_steps"])))
        falls = shortfall.read_shortfall(run, main, scores, ctx.spec.irreducible_error, config)
        if not falls:
            return []
        main = shortfall.run_score(run, falls.judged_on) or main
        step = float(config["baselines"]["margin"]) / 4  # as read_shortfall gives the main run
        reruns = [shortfall.rerun(v.name, v.label, v.diagnosis, training_run.variant_run(ctx, v), main,
                                  config["epochs"], falls, step)
                  for v in self._variants(ctx, cfg, falls)]
        if (falls.baseline or falls.bias is not None) and not falls.fits_training_data:
            larger = training_run.larger_model_run(ctx)
            if larger is not None:
                variant, larger_run = larger
                reruns.append(shortfall.rerun("larger-model", f"a larger model ({variant.describe})",
                                              "model-too-small", larger_run, main, config["epochs"], falls, step))
        best = shortfall.cure(main, reruns, float(config["baselines"]["margin"]), float(cfg["min_share"]))
        if best is None or best.score is None:
            return []
        return [self._finding(ctx, run, main, falls, best, reruns)]

    def _variants(self, ctx, cfg, falls: shortfall.Shortfall) -> list:
        low, high = variants.lr_variants(float(cfg["lr_factor"]))
        if falls.diverged_at is not None and not falls.baseline and falls.bias is None:
            return [low]
        if falls.fits_training_data and falls.bias is None:
            # The training data is fitted (training error below the generalisation gap): a
            # higher rate, no regularisation, no bounded output or a larger model act by
            # fitting it better, which is not what is missing. A lower rate may still be.
            return [low]
        chosen = [low, high]
        reg = regularization(ctx)
        if reg["weight_decay"] > 0 or reg["dropout"] > 0:
            chosen.append(variants.NO_REGULARIZATION)
        found = self._output_activation(ctx)
        if found is not None and found.outside >= float(cfg["min_outside"]):
            chosen.append(variants.without_output_activation(found))
        return chosen

    @staticmethod
    def _output_activation(ctx):
        if ctx.task != "regression" or ctx.spec.forward is not None:
            return None

        def measure():
            targets = []
            for batch in ctx.batches("train"):
                _, y = unpack_batch(batch)
                if isinstance(y, torch.Tensor) and y.is_floating_point():
                    targets.append(y.detach().reshape(-1).float().cpu())
            return variants.output_activation(ctx, torch.cat(targets) if targets else None)

        return ctx.measure(keys.OUTPUT_ACTIVATION, measure)

    def _finding(self, ctx, run, main, falls, best, reruns):
        words = {"label": best.label, "better": best.score.text(), "worse": main.text(), "range": ""}
        location = _LOCATION.get(best.diagnosis, "model")
        found = self._output_activation(ctx) if best.diagnosis == "dead-activations" else None
        if found is not None:
            words["range"] = found.range_text
            location = found.name
        evidence = [f"the short run ({run.last.steps} steps): {falls.text(main)}",
                    *(f"rerun with {r.text(main)}" for r in reruns)]
        if found is not None:
            evidence.append(f"{found.outside:.0%} of the training targets lie outside the {found.kind}'s range "
                            f"{found.range_text}")
        share = best.gain / max(abs(main.value), 1e-12)
        confidence = round(min(0.9, 0.55 + 0.5 * share), 3)
        title = (f"{best.label} cures the short run: {main.split} {main.name} {best.score.text()} instead of "
                 f"{main.text()}")
        return self.finding(
            best.diagnosis, Severity.WARNING, confidence, title=title, evidence=evidence,
            fixes=[f.format(**words) for f in _FIXES[best.diagnosis]], location=location,
            metrics={"confirmed_by": best.label, "experiment": best.name, "main_score": main.value,
                     "experiment_score": best.score.value,
                     "score": f"{main.split} {main.name}",
                     "reruns": ", ".join(f"{r.name} {r.score.value:.4g}" for r in reruns if r.score)})
