"""Bias-variance decomposition of the error, and the remedies in the method's order.

Test error = irreducible + bias + variance (+ distribution shift) + validation
over-fitting, with (see the methodology):

- bias (under-fitting)        = train error - irreducible error
- variance (over-fitting)     = validation error - train error, or, when a train-val
  split (held out from the training distribution) exists, train-val error - train error
- distribution shift          = validation error - train-val error
- validation over-fitting     = test error - validation error

Pure functions: the numbers come from dldoctor's short training run, from the command
line, or from the user's own metrics log.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

#: Component name -> diagnosis ID.
COMPONENT_IDS = {"bias": "underfitting", "variance": "overfitting", "distribution shift": "distribution-shift",
                 "validation over-fitting": "val-overfitting"}


@dataclasses.dataclass(frozen=True)
class Errors:
    """Measured errors (fractions for classification; ``unit`` says what they are).

    ``samples`` (train, val, test, train-val sizes), when known for error rates, gives
    each component a standard error, so that a gap within sampling noise is not
    reported as a finding.
    """

    train: float
    val: float
    test: float | None = None
    train_val: float | None = None
    irreducible: float = 0.0
    unit: str = "error"
    samples: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)

    def __post_init__(self) -> None:
        for name in ("train", "val", "test", "train_val", "irreducible"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} error must be a finite number, got {value}")
            if value is not None and value < 0:
                raise ValueError(f"{name} error must not be negative, got {value}")


@dataclasses.dataclass(frozen=True)
class Decomposition:
    errors: Errors
    bias: float
    variance: float
    shift: float | None
    val_overfit: float | None

    def components(self) -> list[tuple[str, float]]:
        out = [("bias", self.bias), ("variance", self.variance)]
        if self.shift is not None:
            out.append(("distribution shift", self.shift))
        if self.val_overfit is not None:
            out.append(("validation over-fitting", self.val_overfit))
        return out

    def largest(self) -> tuple[str, float]:
        return max(self.components(), key=lambda kv: kv[1])

    def standard_errors(self) -> dict[str, float]:
        """Binomial standard error of each component (0 where sizes are unknown or the unit is not a rate)."""
        e = self.errors
        if e.unit not in ("error", "1 - accuracy"):
            return {}

        def se(rate: float | None, n: int | None) -> float:
            return math.sqrt(max(rate, 1e-6) * max(1 - rate, 1e-6) / n) if rate is not None and n else 0.0

        n_train, n_val, n_test, n_tv = e.samples
        s_train, s_val, s_test, s_tv = se(e.train, n_train), se(e.val, n_val), se(e.test, n_test), se(e.train_val, n_tv)
        out = {"bias": s_train}
        if e.train_val is not None:
            out["variance"] = math.hypot(s_tv, s_train)
            out["distribution shift"] = math.hypot(s_val, s_tv)
        else:
            out["variance"] = math.hypot(s_val, s_train)
        if e.test is not None:
            out["validation over-fitting"] = math.hypot(s_test, s_val)
        return out

    def to_dict(self) -> dict[str, Any]:
        e = self.errors
        return {"unit": e.unit, "train": e.train, "val": e.val, "test": e.test, "train_val": e.train_val,
                "irreducible": e.irreducible, "components": dict(self.components())}


def decompose(errors: Errors) -> Decomposition:
    """Split the error into its components (a component may come out negative: noise)."""
    bias = errors.train - errors.irreducible
    if errors.train_val is not None:
        variance = errors.train_val - errors.train
        shift = errors.val - errors.train_val
    else:
        variance = errors.val - errors.train
        shift = None
    val_overfit = errors.test - errors.val if errors.test is not None else None
    return Decomposition(errors, bias, variance, shift, val_overfit)


@dataclasses.dataclass(frozen=True)
class RemedyContext:
    """What tailors the remedies: facts about the model and data, when known."""

    parameters: int | None = None
    weight_decay: float | None = None
    dropout: float | None = None
    best_epoch: float | None = None
    train_samples: int | None = None
    more_data_helps: bool | None = None
    data_curve: str = ""


def remedies(component: str, ctx: RemedyContext = RemedyContext()) -> list[str]:
    """The methodology's remedies for a component, most promising first, tailored where possible."""
    if component == "bias":
        size = (f" (the model has {ctx.parameters:,} parameters; try 4x wider, or twice as deep)"
                if ctx.parameters else "")
        reg = []
        if ctx.weight_decay:
            reg.append(f"weight decay {ctx.weight_decay:g}")
        if ctx.dropout:
            reg.append(f"dropout {ctx.dropout:g}")
        return [
            f"Make the model bigger: more units per layer, more layers{size}.",
            "Reduce regularisation" + (f" ({', '.join(reg)})" if reg else "") + ".",
            "Error analysis: look at the training samples the model gets wrong; are they mislabelled or unusual?",
            "Try a different architecture, closer to what works on similar data.",
            "Tune hyper-parameters (learning rate first): dldoctor tune.",
            "Add features (more informative inputs).",
        ]
    if component == "variance":
        data = "Add more training data" + (f" (now {ctx.train_samples:,} samples)" if ctx.train_samples else "") + \
            (f": {ctx.data_curve}" if ctx.data_curve else "") + "."
        regularise = "Add regularisation: dropout, weight decay" + \
            (f" (now {ctx.weight_decay:g})" if ctx.weight_decay is not None else "") + "."
        ordered = [data, "Add normalisation layers (batch norm / layer norm).",
                   "Augment the data (flips, crops, noise: whatever leaves the label unchanged).", regularise]
        if ctx.more_data_helps is False:  # the learning curve has flattened: regularise before collecting data
            ordered = [regularise, ordered[1], ordered[2], data]
        ordered += ["Error analysis on the validation samples the model gets wrong.",
                    "Try a different architecture.", "Tune hyper-parameters: dldoctor tune.",
                    "Stop early" + (f": validation error is lowest at epoch {ctx.best_epoch:g}"
                                    if ctx.best_epoch is not None else "") + ".",
                    "Remove features that should not matter.",
                    "Use a smaller model" + (f" (now {ctx.parameters:,} parameters)" if ctx.parameters else "") + "."]
        return ordered
    if component == "distribution shift":
        return [
            "Analyse the validation errors against the train-val errors, and collect more training data "
            "that looks like the validation (target) data.",
            "Synthesise training data like the target (augmentations that mimic its conditions).",
            "Domain adaptation: use unlabelled or a few labelled target samples to carry the training over.",
        ]
    if component == "validation over-fitting":
        return [
            "Enlarge the validation set (or use k-fold cross-validation) so that it ranks configurations "
            "reliably.",
            "Search fewer hyper-parameter configurations, or re-split and re-check the best ones.",
            "Keep the test set untouched until the very end; report it once.",
        ]
    raise ValueError(f"unknown component {component!r}")


def judge(decomposition: Decomposition, cfg: Mapping[str, float],
          context: RemedyContext = RemedyContext()) -> list[dict[str, Any]]:
    """Findings (as plain dicts for a check to wrap) from a decomposition.

    A component counts when it exceeds ``min_component`` and twice its standard
    error (when sample sizes are known). The largest one is a warning when it also
    exceeds ``warn_component``, else info; the others are info.
    """
    threshold = float(cfg["min_component"])
    ses = decomposition.standard_errors()
    significant = [(name, value) for name, value in decomposition.components()
                   if value > threshold and value > 2 * ses.get(name, 0.0)]
    if not significant:
        return []
    largest = max(significant, key=lambda kv: kv[1])
    warn = float(cfg["warn_component"])
    e = decomposition.errors
    table = ", ".join(f"{name} {value:+.3f}" for name, value in decomposition.components())
    numbers = f"train {e.train:.3f}, val {e.val:.3f}" + (f", test {e.test:.3f}" if e.test is not None else "") + \
        (f", train-val {e.train_val:.3f}" if e.train_val is not None else "") + f", irreducible {e.irreducible:.3f}"
    out = []
    for name, value in sorted(significant, key=lambda kv: -kv[1]):
        is_largest = (name, value) == largest
        out.append({
            "id": COMPONENT_IDS[name],
            "severity": "warning" if is_largest and value > warn else "info",
            "confidence": min(0.95, 0.5 + value / max(1e-9, sum(v for _, v in significant)) / 2),
            "title": f"{name} is {'the largest' if is_largest else 'a'} part of the error: {value:.3f}"
                     + (f" of the {'test' if e.test is not None else 'validation'} {e.unit} "
                        f"{e.test if e.test is not None else e.val:.3f}" if is_largest else f" {e.unit}"),
            "evidence": [f"{e.unit}: {numbers}", f"components: {table}"],
            "fixes": remedies(name, context),
            "metrics": {"component": name, "value": value, "standard_error": ses.get(name),
                        **dict(decomposition.components())},
        })
    return out
