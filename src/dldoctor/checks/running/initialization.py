"""The initialization check: is the network sensibly scaled at step 0?"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dldoctor.api import CLASS_SCORES, Check, Severity, Stage, keys, lookup
from dldoctor.api.measure import InitStats, LayerInit, LossAtInit, display_path, isolated_rng, measure_init

BAD_INIT = "bad-initialization"
DEAD = "dead-activations"
DEFAULT_GAIN = 1 / math.sqrt(3)  # PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
_CLASSIFICATION = CLASS_SCORES


@dataclasses.dataclass(frozen=True)
class Issue:
    """One thing wrong at step 0, placed in execution order (``position``)."""

    id: str
    kind: str
    severity: Severity
    confidence: float
    position: int
    location: str
    title: str
    evidence: tuple[str, ...]
    fixes: tuple[str, ...]
    metrics: dict[str, Any]


def _g(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if 1e-4 <= abs(x) < 1e4:
        return f"{x:.3g}"
    return f"{x:.2g}"


def _name(layer: LayerInit) -> str:
    nth = f", call {layer.call + 1}" if layer.call else ""
    return f"{display_path(layer.path)} ({layer.type_name}{nth})"


def _where(layer: LayerInit) -> str:
    return display_path(layer.path) + (f" (call {layer.call + 1})" if layer.call else "")


def _ramp(value: float, start: float, full: float, low: float = 0.6, high: float = 0.95) -> float:
    """Confidence rising from ``low`` at ``start`` to ``high`` at ``full`` (either direction)."""
    if full == start:
        return high
    t = min(1.0, max(0.0, (value - start) / (full - start)))
    return round(low + (high - low) * t, 3)


def _log_ramp(value: float, start: float, full: float) -> float:
    return _ramp(math.log10(max(value, 1e-300)), math.log10(start), math.log10(full))


def _next_activation(layers: Sequence[LayerInit], index: int) -> str | None:
    for layer in layers[index + 1:]:
        if layer.role in ("relu", "tanh", "sigmoid"):
            return layer.role
        if layer.role == "linear":
            return None
    return None


def _init_advice(layer: LayerInit, activation: str | None) -> str:
    path = display_path(layer.path)
    if activation == "relu":
        scheme = f"nn.init.kaiming_normal_({path}.weight, nonlinearity='relu')"
    elif activation in ("tanh", "sigmoid"):
        scheme = f"nn.init.xavier_uniform_({path}.weight, gain=nn.init.calculate_gain('{activation}'))"
    else:
        scheme = f"nn.init.xavier_uniform_({path}.weight)"
    return (f"Remove the custom initialisation of {path} (keep PyTorch's default) or use {scheme}; "
            "apply it to every layer with model.apply(fn).")


def _weight_line(layer: LayerInit) -> str | None:
    """A note on the layer's weight scale when it is far from PyTorch's default."""
    if layer.weight_std is None or not layer.default_weight_std:
        return None
    default = layer.default_weight_std
    ratio = layer.weight_std / default
    # Kaiming's std is 2.45x the default's, Xavier with tanh gain up to 4x, Kaiming
    # fan_out on a narrow-in layer 0.4x: only report what no common scheme gives.
    if 0.2 <= ratio <= 5.0:
        return None
    path = display_path(layer.path)
    if layer.weight_std == 0:
        return f"the weights of {path} are all equal (std 0; PyTorch's default for this fan-in: std {_g(default)})"
    rel = f"{_g(ratio)}x" if ratio > 1 else f"1/{_g(1 / ratio)} of"
    return f"the weights of {path} have std {_g(layer.weight_std)}, {rel} PyTorch's default for this fan-in " \
           f"({_g(default)})"


def _renormalised(layers: Sequence[LayerInit], index: int) -> bool:
    """True when a normalisation layer directly follows: the layer's weight scale then does not matter."""
    for layer in layers[index + 1:]:
        if layer.role != "other":
            return layer.role == "norm"
    return False


def _linear_chain(layers: Sequence[LayerInit]) -> tuple[list[int], int | None]:
    """Positions of linear maps that received a floating input, and the first one with a varying input."""
    chain = [i for i, layer in enumerate(layers) if layer.role == "linear" and layer.in_signal is not None]
    first = next((i for i in chain if (layers[i].in_signal or 0) > 0), None)
    return chain, first


# -- judges: pure functions of the measurement and the thresholds --------------------

def _default_note(loss: LossAtInit, attributable: str) -> list[str]:
    if loss.default_init_loss is None:
        return []
    return [f"re-initialising a copy with PyTorch's defaults gives a loss of {_g(loss.default_init_loss)} on the same "
            f"batches: the initialisation itself {attributable}"]


def judge_loss(stats: InitStats, thr: Mapping[str, float]) -> Issue | None:
    """The loss at init far above that of an uninformative output, because of the initial weights.

    "Far above the expected value" is judged twice: against the uninformative output
    (ln C for balanced cross-entropy, predicting 0 for regression) and against the loss
    the same architecture reaches on the same batches after re-initialising it with
    PyTorch's defaults. Only the part the default init does not reproduce is the
    initialisation's doing: a contrastive objective with a temperature, siamese logits
    from a similarity, or regression targets far smaller than a default head's outputs
    (daily returns of rms 0.01) start high under any standard init and are not judged.
    """
    loss: LossAtInit | None = stats.loss
    if loss is None or loss.uninformative is None or not math.isfinite(loss.loss):
        return None
    default = loss.default_init_loss
    if default is not None and math.isnan(default):
        default = None
    chain = [i for i, layer in enumerate(stats.layers) if layer.role == "linear"]
    position = chain[-1] if chain else len(stats.layers)
    last = stats.layers[chain[-1]] if chain else None
    where = display_path(last.path) if last else "model"
    ref = loss.uninformative
    metrics: dict[str, Any] = {"loss_at_init": loss.loss, "expected_loss": ref, "prior_loss": loss.prior,
                               "output_spread": loss.output_spread, "loss_kind": loss.kind,
                               "default_init_loss": default}
    if loss.kind in _CLASSIFICATION:
        # The same nats thresholds for both yardsticks: a default re-init of the same
        # batches differs from another default draw by a few hundredths of a nat
        # (default logits have std ~0.1-0.5), far below the 1-nat threshold.
        excess = loss.loss - max(ref, default if default is not None else ref)
        if excess < thr["loss_excess_warn_nats"]:
            return None
        severity = Severity.ERROR if excess >= thr["loss_excess_error_nats"] else Severity.WARNING
        confidence = _ramp(excess, thr["loss_excess_warn_nats"], 2 * thr["loss_excess_error_nats"])
        c = loss.num_classes
        expected = f"ln({c}) = {_g(ref)}" if c and loss.kind in ("logits", "log-probs") else \
            f"ln(2) = {_g(ref)} per output" if loss.kind in ("binary-logits", "probs") else _g(ref)
        prior = "" if loss.prior is None else \
            f"; predicting the class frequencies of these batches would give {_g(loss.prior)}"
        what = {"logits": f"the initial logits are too large: std {_g(loss.output_spread)} across classes",
                "log-probs": "the initial log-probabilities spread too far: "
                             f"std {_g(loss.output_spread)} across classes",
                "binary-logits": f"the initial logits are too large: rms {_g(loss.output_spread)}",
                "probs": f"the initial probabilities are far from 0.5 (rms {_g(loss.output_spread)})"}[loss.kind]
        evidence = [f"loss at init {_g(loss.loss)}, expected ≈ {expected} for uniform predictions{prior}",
                    f"{what} (a well-initialised model starts well below 1: the model begins confidently wrong and "
                    "spends its first updates undoing that)"]
        evidence += _default_note(loss, f"adds {_g(loss.loss - default)} nats" if default is not None else "")
        title = f"The loss at initialisation is {_g(loss.loss)}, far above the expected {_g(ref)}"
        target = "≈ ln(C)" if loss.kind in ("logits", "log-probs") else "≈ ln(2)"
        fix = (f"Initialise the last layer {where} small: nn.init.normal_({where}.weight, std=0.01) (or zeros) and "
               f"its bias to 0 (or to the log of the class frequencies), so the initial loss is {target}.")
        metrics["excess_nats"] = excess
    else:
        ratio = loss.loss / ref if ref > 0 else math.inf
        warn, err = thr["loss_ratio_warn"], thr["loss_ratio_error"]
        if loss.kind == "absolute":
            warn, err = math.sqrt(warn), math.sqrt(err)
        # The part the default init does not reproduce: with independent outputs the
        # squared loss is target^2 + output^2, so a ratio of 10 to the default's loss means
        # outputs ~3x those of a default-initialised head on the same batches.
        to_default = loss.loss / default if default is not None and default > 0 else \
            (math.inf if default is None or loss.loss > 0 else 1.0)
        if ratio < warn or to_default < warn:
            return None
        ratio = min(ratio, to_default)
        severity = Severity.ERROR if ratio >= err else Severity.WARNING
        confidence = _log_ramp(ratio, warn, err * 10)
        prior = "" if loss.prior is None else f" (predicting the target mean: {_g(loss.prior)})"
        evidence = [f"loss at init {_g(loss.loss)}, {_g(loss.loss / ref if ref > 0 else math.inf)}x the {_g(ref)} "
                    f"of predicting 0{prior}",
                    f"the initial outputs have rms {_g(loss.output_spread)} while the targets have rms "
                    f"{_g(loss.target_rms)}"]
        evidence += _default_note(loss, f"makes it {_g(to_default)}x larger" if default is not None else "")
        title = f"The loss at initialisation is {_g(loss.loss / ref if ref > 0 else math.inf)}x that of predicting zero"
        fix = (f"Initialise the last layer {where} small: nn.init.normal_({where}.weight, std=0.01) (or zeros), "
               "bias at the target mean, so the initial outputs are on the targets' scale.")
        metrics["loss_ratio"] = ratio
    fixes = [fix]
    odd = [i for i in chain if _weight_line(stats.layers[i]) and not _renormalised(stats.layers, i)]
    evidence += [line for i in odd[:3] if (line := _weight_line(stats.layers[i]))]
    if odd and odd[0] != position:  # hidden layers are off too: they come first
        where = display_path(stats.layers[odd[0]].path)
        fixes.insert(0, _init_advice(stats.layers[odd[0]], _next_activation(stats.layers, odd[0])))
    entry = next((stats.layers[i] for i in chain if stats.layers[i].in_rms is not None), None)
    if entry is not None and entry.in_rms is not None and entry.in_rms > 10:
        evidence.append(f"the input entering {_name(entry)} has rms {_g(entry.in_rms)}: unnormalised inputs "
                        "scale every layer's output with them (see input-not-normalized)")
        fixes.insert(0, "Normalise the inputs first (see input-not-normalized), then look at the loss at init again.")
    return Issue(BAD_INIT, "loss", severity, confidence, position, where, title, tuple(evidence), tuple(fixes),
                 metrics)


def _unnormalised_runs(layers: Sequence[LayerInit], chain: list[int]) -> list[list[int]]:
    """The chain cut wherever a normalisation layer runs between two linear maps.

    A LayerNorm or BatchNorm rescales the signal to unit spread whatever the weights before
    it did, so a shrinking or growing spread carries over only within a run of linear maps
    with no normalisation between them (a transformer block, a ResNet stage). Measured: a
    two-layer random-init BERT (std 0.02 weights, LayerNorm after every residual) trains to
    100% on a toy task while its whole chain shrinks the spread 2400x; each run between its
    norms shrinks it 45x at most (the threshold is 1000x).
    """
    runs: list[list[int]] = []
    for i in chain:
        if runs and not any(layer.role == "norm" for layer in layers[runs[-1][-1] + 1:i]):
            runs[-1].append(i)
        else:
            runs.append([i])
    return [run for run in runs if len(run) >= 2]


def residual_blocks(stats: InitStats, min_correlation: float) -> list[str]:
    """Containers whose output follows their input through a skip path (measured, not named).

    A residual block ``x + f(x)`` keeps each unit of the stream: its output correlates
    with its input at 1 / sqrt(1 + r^2) for a branch r times the stream's spread, at
    least ``min_correlation`` while the branch is no larger than the stream allows. A
    container without a skip mixes units through random weights: correlation ~0.
    """
    return [path for path, corr in stats.skips if corr >= min_correlation]


def _in_branch(path: str, blocks: Sequence[str]) -> bool:
    return any(block == "" or path.startswith(block + ".") for block in blocks)


def _bypassed(layers: Sequence[LayerInit], run: list[int], min_correlation: float) -> bool:
    """True when a skip path carries the stream past ``run``: the normalisation layer
    that closes the run receives an input that still follows the one the previous
    normalisation layer received (x + f(LN(x)) going into the next LN, in whatever
    modules the model keeps its norms and branches)."""
    closing = next((layer for layer in layers[run[-1] + 1:] if layer.role in ("norm", "linear")), None)
    return closing is not None and closing.role == "norm" and (closing.follows or 0.0) >= min_correlation


def judge_depth(stats: InitStats, thr: Mapping[str, float]) -> Issue | None:
    """The input-dependent signal vanishing or exploding through the linear layers.

    Linear maps on a residual branch are left out of the chain: the stream passes the
    branch through its skip path, so its scale is not the product of the branch's
    gains (a pre-LN transformer branch at N(0, 0.02) shrinks its own signal 300-1600x
    between q/k/v and the output projection while the stream keeps its scale), and q,
    k and v read the same input side by side, not one after another. A branch is
    recognised by measurement, two ways: a container module whose output follows its
    input (``residual_blocks``), or a run of layers between two normalisation layers
    whose inputs follow each other (``_bypassed``).
    """
    blocks = residual_blocks(stats, thr["residual_correlation"])
    index = [i for i, layer in enumerate(stats.layers) if not _in_branch(layer.path, blocks)]
    layers = tuple(stats.layers[i] for i in index)  # positions below map back through ``index``
    chain, first = _linear_chain(layers)
    if first is None:
        return None
    runs = [run for run in _unnormalised_runs(layers, [i for i in chain if i >= first])
            if not _bypassed(layers, run, thr["residual_correlation"])]
    if not runs:
        return None
    # The run whose spread changes most (in either direction) is the one to judge.
    chain = max(runs, key=lambda run: abs(math.log(max(layers[run[-1]].in_signal or 0.0, 1e-300)
                                                   / (layers[run[0]].in_signal or 1.0))))
    first = chain[0]
    if not (layers[first].in_signal or 0) > 0:
        return None
    last = layers[chain[-1]]
    hidden = chain[:-1]
    total = (last.in_signal or 0.0) / (layers[first].in_signal or 1.0)  # > 0 by _linear_chain
    gains = [(i, gain) for i in hidden if (gain := layers[i].gain) is not None]
    if not gains:
        return None
    geo = 0.0 if any(g == 0 for _, g in gains) else math.exp(sum(math.log(g) for _, g in gains) / len(gains))
    if total < thr["vanish_total"] and geo < thr["vanish_gain"]:
        kind = "vanishing"
        culprits = [i for i, g in gains if g < thr["vanish_gain"]]
        severity = Severity.ERROR if total < thr["vanish_total_error"] else Severity.WARNING
        confidence = _log_ramp(1 / max(total, 1e-300), 1 / thr["vanish_total"], 1 / thr["vanish_total_error"])
        if culprits and layers[culprits[0]].signal == 0:
            title = f"{_name(layers[culprits[0]])} passes no input-dependent signal at initialisation"
        elif total == 0:
            title = "The input-dependent signal vanishes completely through the layers at initialisation"
        else:
            title = f"The signal shrinks {_g(1 / max(total, 1e-300))}x through the layers at initialisation"
        verb = "falls"
    elif total > thr["explode_total"] and geo > thr["explode_gain"]:
        kind = "exploding"
        culprits = [i for i, g in gains if g > thr["explode_gain"]]
        severity = Severity.ERROR if total > thr["explode_total_error"] else Severity.WARNING
        confidence = _log_ramp(total, thr["explode_total"], thr["explode_total_error"])
        title = f"Activations grow {_g(total)}x through the layers at initialisation"
        verb = "grows"
    else:
        return None
    position = culprits[0] if culprits else hidden[0]
    shown = ", ".join(f"{display_path(layers[i].path)} {_g(g)}" for i, g in gains[:8])
    more = f" (+{len(gains) - 8} more)" if len(gains) > 8 else ""
    span = f"{len(hidden)} hidden linear layer{'s' if len(hidden) > 1 else ''}"
    evidence = [f"the input-dependent spread {verb} from {_g(layers[first].in_signal)} entering "
                f"{_name(layers[first])} to {_g(last.in_signal)} entering {_name(last)} "
                + (f"({_g(total)}x over {span})" if total > 0 else f"(nothing of it is left after {span})"),
                f"signal gain per layer: {shown}{more} (PyTorch's default init gives {DEFAULT_GAIN:.2f}, "
                "Xavier about 1, Kaiming 1.4)"]
    evidence += [line for i in culprits[:3] if (line := _weight_line(layers[i]))]
    fixes = [_init_advice(layers[position], _next_activation(layers, position))]
    metrics = {"signal_ratio": total, "mean_gain": geo, "hidden_linear_layers": len(hidden)}
    return Issue(BAD_INIT, kind, severity, confidence, index[position], display_path(layers[position].path), title,
                 tuple(evidence), tuple(fixes), metrics)


def judge_symmetry(stats: InitStats, thr: Mapping[str, float]) -> Issue | None:
    """Hidden linear layers whose units all compute the same function (constant init)."""
    layers = stats.layers
    chain = [i for i, layer in enumerate(layers) if layer.role == "linear"]
    for i in chain[:-1]:  # a constant last layer is fine: its rows get different gradients
        layer = layers[i]
        # Below 1e-4 of the rms the float32 activations cannot resolve a 1e-3 difference.
        if layer.units < 2 or not layer.signal > 1e-4 * layer.out_rms:
            continue
        ratio = layer.diversity / layer.signal
        if ratio >= thr["symmetry_ratio"]:
            continue
        same = "its weights all have the same value (std 0)" if layer.weight_std == 0 else \
            "its weight rows are identical"
        evidence = (f"the {layer.units} units of {_name(layer)} vary identically with the input: they differ "
                    f"by {_g(layer.diversity)} against a signal of {_g(layer.signal)} (ratio {_g(ratio)}; random "
                    f"init gives about 1): {same}",
                    "gradient descent gives identical units identical updates, so they stay copies of one unit")
        fix = (f"Initialise {display_path(layer.path)}.weight randomly: remove the constant init "
               "(nn.init.constant_/fill_/ones_) and keep PyTorch's default or use nn.init.kaiming_uniform_.")
        return Issue(BAD_INIT, "symmetry", Severity.ERROR, 0.9, i, display_path(layer.path),
                     f"All {layer.units} units of {display_path(layer.path)} compute the same function at "
                     "initialisation", evidence, (fix,), {"unit_diversity_ratio": ratio, "units": layer.units})
    return None


def judge_saturation(stats: InitStats, thr: Mapping[str, float]) -> Issue | None:
    """tanh / sigmoid / recurrent outputs pinned at their limits at step 0."""
    layers = stats.layers
    hits = [i for i, layer in enumerate(layers)
            if layer.saturated_frac is not None and layer.saturated_frac >= thr["saturated_warn"]]
    if not hits:
        return None
    i = hits[0]
    layer = layers[i]
    frac = layer.saturated_frac or 0.0
    limit = "within 0.01 of 0 or 1" if layer.role == "sigmoid" else "beyond ±0.99"
    evidence = [f"{frac:.0%} of the outputs of {_name(layer)} are {limit}, where the gradient is nearly 0"]
    if len(hits) > 1:
        evidence.append("also saturated: " + ", ".join(
            f"{display_path(layers[j].path)} {layers[j].saturated_frac:.0%}" for j in hits[1:6]))
    producer = next((j for j in range(i - 1, -1, -1) if layers[j].role == "linear"), None)
    fixes = []
    entry = layer if layer.role == "rnn" else layers[producer] if producer is not None else None
    if entry is not None and entry.in_rms is not None and entry.in_rms > 10:
        evidence.append(f"the input entering {_name(entry)} has rms {_g(entry.in_rms)}: unnormalised inputs "
                        "drive it into saturation (see input-not-normalized)")
        fixes.append("Normalise the inputs (see input-not-normalized); the saturation should go with it.")
    if producer is not None and layer.role != "rnn":
        evidence.append(f"its input from {_name(layers[producer])} has rms {_g(layers[producer].out_rms)} "
                        "(tanh and sigmoid respond for inputs of about ±2)")
        if line := _weight_line(layers[producer]):
            evidence.append(line)
        fixes.append(_init_advice(layers[producer], layer.role))
    elif not fixes:
        fixes.append(f"Keep PyTorch's default initialisation of {display_path(layer.path)} (remove custom "
                     "weight init such as normal_(0, 1)).")
    confidence = _ramp(frac, thr["saturated_warn"], 0.9)
    return Issue(BAD_INIT, "saturation", Severity.WARNING, confidence, i, display_path(layer.path),
                 f"{frac:.0%} of the outputs of {_where(layer)} are saturated at initialisation",
                 tuple(evidence), tuple(fixes), {"saturated_frac": frac})


def judge_dead(stats: InitStats, thr: Mapping[str, float]) -> Issue | None:
    """ReLU units that never fire at step 0, where the layer feeding them still varies with the input."""
    layers = stats.layers
    dead = [i for i, layer in enumerate(layers)
            if layer.dead_unit_frac is not None and layer.dead_unit_frac >= thr["dead_warn"]
            and layer.values_per_unit >= thr["dead_min_values"]]
    for i in dead:
        layer = layers[i]
        frac = layer.dead_unit_frac or 0.0
        producer = next((j for j in range(i - 1, -1, -1) if layers[j].role != "other"), None)
        if producer is not None:
            p = layers[producer]
            if not p.signal > 1e-6 * max(p.out_rms, 1e-30):
                continue  # nothing varies upstream: a consequence of a signal lost earlier
            # Units whose own bias happens to be negative die when the signal is weak (deep
            # default-init nets): about half of them, scattered around zero. Dead units
            # are this check's finding when their inputs share a negative shift (beyond
            # 3 standard errors of the mean of zero-centred unit means, and half their
            # spread), or when nearly all are dead, which random bias signs do not do.
            shift = max(0.5, 3.0 / math.sqrt(max(1, p.units))) * p.unit_mean_spread
            if not p.mean < -shift and frac < thr["dead_error"]:
                continue
        severity = Severity.ERROR if frac >= thr["dead_error"] else Severity.WARNING
        evidence = [f"{frac:.0%} of the {layer.units} units of {_name(layer)} are 0 for every one of the "
                    f"{layer.values_per_unit} probed values: they get no gradient and may never recover"]
        fixes = []
        if producer is not None:
            line = f"its input from {_name(p)} varies by {_g(p.signal)} across samples around a mean of {_g(p.mean)}"
            if p.bias_mean is not None and p.bias_mean < -p.signal:
                line += f"; the bias of {display_path(p.path)} averages {_g(p.bias_mean)}"
                fixes.append(f"Initialise the bias of {display_path(p.path)} to zero "
                             f"(nn.init.zeros_({display_path(p.path)}.bias)) instead of {_g(p.bias_mean)}.")
            evidence.append(line)
        later = [j for j in dead if j > i]
        if later:
            evidence.append("also dead: " + ", ".join(
                f"{display_path(layers[j].path)} {layers[j].dead_unit_frac:.0%}" for j in later[:6]))
        confidence = _ramp(frac, thr["dead_warn"], 1.0, 0.6, 0.9)
        return Issue(DEAD, "dead", severity, confidence, i, display_path(layer.path),
                     f"{frac:.0%} of the units of {_where(layer)} never fire at initialisation",
                     tuple(evidence), tuple(fixes), {"dead_unit_frac": frac, "units": layer.units})
    return None


JUDGES = (judge_depth, judge_symmetry, judge_saturation, judge_dead, judge_loss)


def judge_init(stats: InitStats, thr: Mapping[str, float]) -> list[Issue]:
    return [issue for judge in JUDGES if (issue := judge(stats, thr)) is not None]


def merge_issues(issues: Iterable[Issue]) -> dict[str, dict[str, Any]]:
    """One finding's worth of fields per diagnosis ID: the earliest issue leads (it is upstream)."""
    grouped: dict[str, list[Issue]] = {}
    for issue in issues:
        grouped.setdefault(issue.id, []).append(issue)
    out = {}
    for diagnosis_id, group in grouped.items():
        group.sort(key=lambda i: i.position)
        lead = group[0]
        severity = max((i.severity for i in group), key=lambda s: s.rank)
        evidence: list[str] = []
        fixes: list[str] = []
        metrics: dict[str, Any] = {}
        for issue in group:
            evidence += [e for e in issue.evidence if e not in evidence]
            fixes += [f for f in issue.fixes if f not in fixes]
            metrics.update(issue.metrics)
        fixes += [f for f in lookup(diagnosis_id).fixes if f not in fixes]
        metrics["issues"] = ", ".join(i.kind for i in group)
        out[diagnosis_id] = dict(severity=severity, confidence=max(i.confidence for i in group), title=lead.title,
                                 evidence=evidence, fixes=fixes, metrics=metrics, location=lead.location)
    return out


class InitializationCheck(Check):
    """At step 0 the loss sits near its expected value and activations neither vanish, explode, saturate nor die.

    Runs two training batches forward through a fresh copy of the model and compares
    the loss with that of uniform predictions (ln C for cross-entropy) or of
    predicting zero (regression). Through the layers it measures, per unit, how much
    each output varies with the input: the gain of every linear layer, the ratio
    from the first to the last, whether all units of a layer compute the same thing
    (constant init), the share of tanh/sigmoid outputs pinned at their limits, and
    the share of ReLU units that never fire. Findings are localised to the module.
    """

    name = "initialization"
    stage = Stage.RUN
    order = 30
    requires = ("forward_pass",)
    emits = (BAD_INIT, DEAD)

    KEYS = ("loss_excess_warn_nats", "loss_excess_error_nats", "loss_ratio_warn", "loss_ratio_error",
            "vanish_total", "vanish_gain", "vanish_total_error", "explode_total", "explode_gain",
            "explode_total_error", "symmetry_ratio", "saturated_warn", "dead_warn", "dead_error",
            "dead_min_values", "residual_correlation")

    def run(self, ctx):
        def measure():
            batches = ctx.batches("train", int(ctx.config.get("initialization.batches")))
            with isolated_rng(ctx.seed):
                return measure_init(ctx.fresh_model(), batches, ctx.forward_fn, ctx.spec.loss_fn,
                                    default_model=ctx.fresh_model())

        stats = ctx.measure(keys.INIT_STATS, measure)
        thr = {k: float(ctx.config.get(f"initialization.{k}")) for k in self.KEYS}
        merged = merge_issues(judge_init(stats, thr))
        return [self.finding(diagnosis_id, **fields) for diagnosis_id, fields in sorted(merged.items())]
