"""Gradient flow through depth during the single-batch fit."""

from __future__ import annotations

import math

from dldoctor.api import Check, Severity, Stage
from dldoctor.api.measure import display_path, experiments
from dldoctor.api.read import curves


class GradientDynamicsCheck(Check):
    """Gradients reach every layer without vanishing, exploding or dying, while fitting one batch.

    Reads the baseline single-batch run (shared with the other overfit checks): which
    layers never get a gradient at any step; the
    per-layer gradient norm relative to the layer's weights, from the first layer to
    the last; the global gradient norm over the steps; the fraction of ReLU units that
    never fire on the batch by the end. Judged only when the batch was not fitted: a
    model that fits its batch has no gradient problem worth a warning.
    """

    name = "gradient-dynamics"
    stage = Stage.OVERFIT
    order = 20
    requires = ("forward_pass",)
    emits = ("vanishing-gradients", "exploding-gradients", "dead-activations", "no-gradient-flow")

    def run(self, ctx):
        cfg = ctx.config.section("gradient_dynamics")
        curve = experiments.baseline(ctx)
        reading = curves.reading(ctx, curve)
        if reading.shape == "converged" or curves.fitted_by_metric(curve, reading):
            return []
        findings = []
        curve_text = f"single-batch loss: {reading.describe()} {curves.sparkline(curve.losses)}"

        relative = {m: curve.layer_grad.get(m, 0.0) / w for m, w in curve.layer_weight.items() if w > 0}
        layers = [m for m in curve.layer_order if m in relative]
        silent = [m for m in curve.layer_order if curve.layer_grad_max.get(m, 0.0) == 0.0]
        dead = {m: f for m, f in curve.dead_units.items() if f > float(cfg["dead_frac"])}
        # An activation whose every unit is dead passes no gradient back, so the layers
        # before it are silent because of it: one root cause, reported once, below.
        all_dead = [m for m, f in dead.items() if f >= 1.0]
        if silent and len(silent) < len(layers) and not all_dead:
            findings.append(self.finding(
                "no-gradient-flow", Severity.ERROR, 0.8,
                title=f"{len(silent)} of {len(layers)} layers get a zero gradient at every step of the fit",
                evidence=[f"layers with zero gradient throughout: {', '.join(display_path(m) for m in silent[:6])}",
                          curve_text],
                metrics={"zero_grad_layers": len(silent), "layers": len(layers)},
                location=display_path(silent[0]),
            ))
        flowing = [m for m in layers if relative[m] > 0]
        if len(flowing) >= 3:
            first, last = flowing[0], flowing[-1]
            ratio = relative[first] / relative[last]
            if ratio < float(cfg["vanishing_ratio"]):
                findings.append(self.finding(
                    "vanishing-gradients", Severity.WARNING, min(0.9, 0.5 + 0.1 * -math.log10(max(ratio, 1e-12))),
                    title=f"gradients vanish with depth: {display_path(first)} gets {ratio:.1e}x the relative "
                          f"gradient of {display_path(last)}",
                    evidence=[f"median |grad|/|weight|: {display_path(first)} {relative[first]:.2e}, "
                              f"{display_path(last)} {relative[last]:.2e} (ratio {ratio:.1e}, threshold "
                              f"{float(cfg['vanishing_ratio']):g})", curve_text],
                    metrics={"ratio": ratio, "first_layer": first, "last_layer": last},
                    location=display_path(first),
                ))
        norms = [g for g in curve.grad_norms if math.isfinite(g)]
        if len(norms) >= 5 and norms[0] > 0:
            growth = math.inf if curve.gradient_overflow else max(norms) / norms[0]
            if growth > float(cfg["exploding_growth"]):
                if curve.gradient_overflow:
                    # The backward pass overflowed while the forward pass was still finite:
                    # the gradient itself exploded, whatever its growth before that step.
                    title = (f"the gradient overflows to NaN/Inf at step {curve.first_nonfinite} while the loss is "
                             f"still finite ({curve.losses[-1]:.4g})")
                    said = f"global gradient norm {norms[0]:.3g} at step 0, up to {max(norms):.3g}, then NaN/Inf " \
                           f"at step {curve.first_nonfinite}"
                else:
                    title = f"the gradient norm grows {growth:.0f}x while fitting one batch"
                    said = f"global gradient norm {norms[0]:.3g} at step 0, up to {max(norms):.3g} " \
                           f"(step {norms.index(max(norms))})"
                findings.append(self.finding(
                    "exploding-gradients", Severity.WARNING, min(0.9, 0.5 + 0.1 * math.log10(growth)),
                    title=title,
                    evidence=[said, curve_text],
                    fixes=["Clip the gradient norm: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) "
                           "(or the spec's grad_clip_norm).",
                           "Lower the learning rate.",
                           "Add normalisation (LayerNorm/BatchNorm) or residual connections; check the init scale."],
                    metrics={"growth": growth if math.isfinite(growth) else None, "initial_norm": norms[0],
                             "max_norm": max(norms), "gradient_overflow": curve.gradient_overflow},
                    location="model",
                ))
        if dead:
            worst = max(dead, key=dead.get)
            starved = [display_path(m) for m in silent] if all_dead else []
            findings.append(self.finding(
                "dead-activations", Severity.ERROR if starved else Severity.WARNING, 0.8 if starved else 0.7,
                title=f"{dead[worst]:.0%} of the units after {display_path(worst)} never fire by the end of the fit",
                evidence=["units that never fire on the batch: " + ", ".join(
                    f"{display_path(m)} {f:.0%}" for m, f in sorted(dead.items(), key=lambda kv: -kv[1])[:4]),
                    *([f"no gradient passes back through them: {', '.join(starved[:6])} get a zero gradient at "
                       f"every step"] if starved else []),
                    curve_text],
                metrics={"dead_fraction": dead[worst], "module": worst, "zero_grad_layers": len(starved)},
                location=display_path(worst),
            ))
        return findings
