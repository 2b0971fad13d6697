"""The input-scale check: does the first layer get inputs of roughly unit scale?"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from dldoctor.api import Check, Judgement, Severity, Stage, keys, lookup
from dldoctor.api.measure import FeatureStats, InputStats, Setup, experiments, isolated_rng, measure_inputs
from dldoctor.api.read import curves

ID = "input-not-normalized"

_SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclasses.dataclass(frozen=True)
class Issue:
    """One way the inputs are off, with how far beyond its threshold."""

    kind: str  # "scale", "tiny", "offset", "disparity"
    severity: Severity
    confidence: float
    headline: str
    evidence: str


def _g(x: float) -> str:
    """A number as a user would write it: 4 significant digits, no exponent for ordinary sizes."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if 1e3 <= abs(x) < 1e6:
        return f"{x:.0f}"
    if 1e-3 <= abs(x) < 1e3:
        return f"{x:.4g}"
    return f"{x:.3g}"


def _confidence(ratio: float) -> float:
    """0.6 at the threshold, +0.1 per order of magnitude beyond it, at most 0.95."""
    return round(min(0.95, 0.6 + 0.1 * math.log10(max(ratio, 1.0))), 3)


def _grade(value: float, warn: float, info: float, larger_is_worse: bool = True) -> tuple[Severity, float] | None:
    beyond = (lambda t: value > t) if larger_is_worse else (lambda t: value < t)
    if beyond(warn):
        ratio = value / warn if larger_is_worse else warn / max(value, 1e-30)
        return Severity.WARNING, _confidence(ratio)
    if beyond(info):
        return Severity.INFO, 0.5
    return None


def raw_pixel_range(stats: InputStats, varying: list[FeatureStats], max_pixel_min: float) -> int | None:
    """The full-scale value (255, 4095, 65535, ...) when inputs look like raw integer pixels stored as floats."""
    image_like = (stats.layout == "channels" and len(stats.shape) >= 3) or len(stats.features) >= 64
    if not image_like or not varying or not all(f.integer_valued and f.min >= 0 for f in varying):
        return None
    top = max(f.max for f in varying)
    if not max_pixel_min < top <= 65535:
        return None
    return 255 if top <= 255 else 2 ** math.ceil(math.log2(top + 1)) - 1


def _label(stats: InputStats, index: int) -> str:
    return f"{'channel' if stats.layout == 'channels' else 'feature'} {index}"


def _describe(stats: InputStats, index: int) -> str:
    f = stats.features[index]
    kind = ", integer-valued" if f.integer_valued else ""
    return f"{_label(stats, index)}: mean {_g(f.mean)}, std {_g(f.std)}, range [{_g(f.min)}, {_g(f.max)}]{kind}"


def _tuple(values: list[float]) -> str:
    inner = ", ".join(_g(v) for v in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def normalisation_fixes(stats: InputStats, full_scale: int | None, tiny: bool) -> list[str]:
    """Case-specific fixes quoting the constants measured on the probed batches."""
    fixes: list[str] = []
    feats = stats.features
    scale = float(full_scale or 1)
    means = [f.mean / scale for f in feats]
    stds = [(f.std if not f.constant else 1.0) / scale for f in feats]
    note = " (statistics of the first training batches; compute them on the whole training split)"
    if tiny:
        top = max(abs(f.min) for f in feats)
        top = max(top, *(abs(f.max) for f in feats))
        fixes.append(f"The inputs never exceed {_g(top)} in magnitude: look for a scaling applied twice (e.g. "
                     "transforms.ToTensor() already divides by 255; a second '/ 255' shrinks the data 255x) "
                     "and remove the extra one.")
    if stats.layout == "channels" and len(feats) <= 16:
        first = f"Scale to [0, 1] first (x / {scale:g}, or transforms.ToTensor() for 8-bit images), then " \
            if full_scale else "Standardise each channel: "
        fixes.append(f"{first}transforms.Normalize(mean={_tuple(means)}, std={_tuple(stds)}), i.e. "
                     f"x = (x - mean[c]) / std[c] per channel{note}.")
    elif len(feats) <= 16:
        binary = [i for i, f in enumerate(feats) if f.binary]
        keep = f"; leave the 0/1 features {binary} as they are (mean 0, std 1 there)" if binary else ""
        mean_list = [float(_g(m)) if not f.binary else 0.0 for m, f in zip(means, feats)]
        std_list = [float(_g(s)) if not f.binary else 1.0 for s, f in zip(stds, feats)]
        fixes.append("Standardise each feature with training-set statistics: x = (x - mean) / std with "
                     f"mean = torch.tensor({mean_list}), std = torch.tensor({std_list}){keep}{note}.")
    else:
        fixes.append("Standardise each feature with training-set statistics: "
                     "sklearn.preprocessing.StandardScaler().fit(X_train) and .transform() every split, or "
                     "x = (x - X_train.mean(0)) / X_train.std(0) (leave 0/1 and constant features as they are).")
    return fixes


def judge_inputs(stats: InputStats, thresholds: Mapping[str, float]) -> Judgement | None:
    """Decide from per-feature statistics whether the inputs are far from unit scale."""
    if stats.skipped or not stats.features:
        return None
    index = [i for i, f in enumerate(stats.features) if not f.binary and not f.constant]
    varying = [stats.features[i] for i in index]
    if not varying:
        return None
    rms = math.sqrt(sum(f.rms ** 2 for f in varying) / len(varying))
    offset = math.sqrt(sum(f.mean ** 2 for f in varying) / sum(f.std ** 2 for f in varying))
    disparity = 1.0
    if len(varying) >= 2:
        std_ratio = max(f.std for f in varying) / min(f.std for f in varying)
        ranges = [f.max - f.min for f in varying]
        disparity = min(std_ratio, max(ranges) / max(min(ranges), 1e-30))
    full_scale = raw_pixel_range(stats, varying, thresholds["max_pixel_min"])
    top = max(max(abs(f.min), abs(f.max)) for f in varying)

    issues: list[Issue] = []
    grade = _grade(rms, thresholds["rms_warn"], thresholds["rms_info"])
    if grade:
        what = "raw integer pixel values stored as floats" if full_scale else "far from unit scale"
        issues.append(Issue("scale", *grade, f"inputs are {what} (rms {_g(rms)})",
                            f"root mean square of the inputs {_g(rms)} (standardised data: 1), values up to "
                            f"{_g(top)} in magnitude" + (f", all integers in [0, {full_scale}]" if full_scale else "")))
    # Sparse features (bag-of-words counts) have a small rms but ordinary values: judge
    # smallness on the larger of the rms and a quarter of the typical feature range
    # (about one std for dense data).
    median_range = sorted(f.max - f.min for f in varying)[len(varying) // 2]
    magnitude = max(rms, median_range / 4)
    grade = _grade(magnitude, thresholds["rms_tiny_warn"], thresholds["rms_tiny_info"], larger_is_worse=False)
    if grade:
        issues.append(Issue("tiny", *grade, f"inputs are tiny (rms {_g(rms)})",
                            f"root mean square of the inputs {_g(rms)} (standardised data: 1), values at most "
                            f"{_g(top)} in magnitude"))
    grade = _grade(offset, thresholds["offset_warn"], thresholds["offset_info"])
    if grade:
        issues.append(Issue("offset", *grade, f"inputs sit far from zero (mean offset {_g(offset)}x their spread)",
                            f"the feature means are {_g(offset)}x the features' spread (sqrt(sum mean^2 / sum "
                            "var)): most of each first-layer pre-activation is a constant, not the input"))
    grade = _grade(disparity, thresholds["disparity_warn"], thresholds["disparity_info"])
    if grade:
        lo = min(index, key=lambda i: stats.features[i].std)
        hi = max(index, key=lambda i: stats.features[i].std)
        issues.append(Issue("disparity", *grade,
                            f"feature scales differ by {_g(disparity)}x",
                            f"feature scales differ by {_g(disparity)}x: std {_g(stats.features[hi].std)} "
                            f"({_label(stats, hi)}) versus {_g(stats.features[lo].std)} ({_label(stats, lo)})"))
    if not issues:
        return None
    issues.sort(key=lambda i: (-_SEVERITY_ORDER[i.severity], ["scale", "tiny", "offset", "disparity"].index(i.kind)))
    severity = issues[0].severity
    confidence = max(i.confidence for i in issues if i.severity == severity)

    shown = int(thresholds["features_shown"])
    order = sorted(index, key=lambda i: -abs(math.log10(max(stats.features[i].rms, 1e-30))))
    if any(i.kind == "disparity" for i in issues):  # show both ends of the range
        by_std = sorted(index, key=lambda i: stats.features[i].std)
        order = list(dict.fromkeys([by_std[-1], by_std[0]] + order))
    where = stats.where + (f" ({stats.module_type})" if stats.module_type else "")
    evidence = [i.evidence for i in issues]
    after = f", after the model's own parameter-free {', '.join(stats.after)}" if stats.after else ""
    evidence.append(f"measured on {stats.samples} samples at the input of {where}{after}, shape "
                    f"[{', '.join(map(str, stats.shape))}], statistics per "
                    f"{'channel' if stats.layout == 'channels' else 'feature'} ({len(stats.features)} in all"
                    + (f", {sum(f.binary for f in stats.features)} of them 0/1 and left out"
                       if any(f.binary for f in stats.features) else "") + ")")
    evidence += [_describe(stats, i) for i in order[:shown]]
    headline = issues[0].headline
    title = headline[0].upper() + headline[1:]
    extra = [i.headline for i in issues[1:] if i.severity == severity]
    if extra:
        title += "; " + "; ".join(extra)
    fixes = normalisation_fixes(stats, full_scale, any(i.kind == "tiny" for i in issues))
    fixes += [f for f in lookup("input-not-normalized").fixes if f not in fixes]
    metrics = {"rms": rms, "offset_ratio": offset, "scale_disparity": disparity, "features": len(stats.features),
               "samples": stats.samples, "max_abs": top, "raw_pixel_full_scale": full_scale or 0,
               "layout": stats.layout}
    if stats.layout == "channels" and len(stats.features) <= 16:
        metrics["channel_mean"] = ", ".join(_g(f.mean) for f in stats.features)
        metrics["channel_std"] = ", ".join(_g(f.std) for f in stats.features)
    return Judgement(ID, severity, confidence, title, tuple(evidence), tuple(fixes), metrics, "data",
                     case="+".join(i.kind for i in issues))


class InputScaleCheck(Check):
    """Inputs reach the first trainable layer at roughly unit scale (per feature / channel).

    Measures the tensor the first weight-bearing layer receives, on a few training
    batches, after whatever fixed preprocessing the model does itself (a Normalize
    with buffer constants, a LayerNorm without affine parameters, ``x / 255`` in
    ``forward``): per channel for images and per feature for tables and sequences: the overall scale,
    how far the means sit from zero relative to the spread, and how far apart the
    features' scales are. Raw 0-255 pixels, unscaled physical units and data scaled
    twice are reported with the constants to normalise them. Token ids going into
    an embedding, 0/1 features and constant features are left out, and so is a model
    whose first layer is a normalisation layer.
    """

    name = "input-scale"
    stage = Stage.RUN
    order = 20
    requires = ("forward_pass",)
    emits = (ID,)

    KEYS = ("rms_warn", "rms_info", "rms_tiny_warn", "rms_tiny_info", "offset_warn", "offset_info",
            "disparity_warn", "disparity_info", "max_pixel_min", "features_shown")

    def run(self, ctx):
        from dldoctor.api.measure import unpack_batch

        def fallback(batch):
            if ctx.spec.forward is None:
                return unpack_batch(batch)[0]
            return batch

        def measure():
            batches = ctx.batches("train", int(ctx.config.get("input_scale.batches")))
            with isolated_rng(ctx.seed):
                return measure_inputs(ctx.fresh_model(), batches, ctx.forward_fn, fallback)

        stats = ctx.measure(keys.INPUT_STATS, measure)
        if stats is None:
            return []
        thresholds = {k: float(ctx.config.get(f"input_scale.{k}")) for k in self.KEYS}
        verdict = judge_inputs(stats, thresholds)
        if verdict is None:
            return []
        if verdict.severity.at_least(Severity.WARNING):
            verdict = self._confirm(ctx, verdict)
        return [self.judged(verdict)]

    @staticmethod
    def _confirm(ctx, verdict: Judgement) -> Judgement:
        """Does the scale matter for this model? The single-batch fit as given against the
        same fit with the inputs standardised over the batch (same weights, steps and rate):
        when only the standardised one fits, the scale is confirmed as the cause, and it
        ranks (and explains the mechanisms it causes) as an experiment-confirmed finding."""
        if ctx.spec.forward is not None:
            return verdict
        base = experiments.baseline(ctx)
        base_reading = curves.reading(ctx, base)
        if base_reading.shape == "converged":
            return verdict  # the batch fits as it is: the scale is worth fixing, not shown to be the cause
        setup = Setup(standardize_inputs=True)
        scaled = experiments.run(ctx, setup)
        reading = curves.reading(ctx, scaled)
        if not curves.fixes_curve(ctx, reading, base_reading):
            return verdict
        evidence = (*verdict.evidence,
                    f"one batch as given: {base_reading.describe()}; with the inputs standardised "
                    f"(same weights, learning rate and steps): {reading.describe()}")
        return dataclasses.replace(verdict, evidence=evidence,
                                   metrics={**verdict.metrics, "confirmed_by": setup.label})
