"""The network at step 0: how the signal scales through its layers, and the loss at init.

One forward pass per batch (no backward), on a fresh copy of the model in training
mode (dropout off), with a forward hook on every leaf module. For each module call it records, per
*unit* (a feature of a linear layer, a channel of a convolution, the last dimension
of a sequence), statistics pooled over the samples and positions of the batches:

* the input-dependent *signal*: the spread of a unit's value over samples and
  positions (a bias, identical for every sample, contributes nothing);
* the *diversity* of units: how much units differ in the way they vary with the
  input (each unit's deviation from its own mean, compared across units); zero when
  every unit computes the same function up to a constant (weights set to a constant);
* for linear maps (``nn.Linear``, convolutions), the signal of their input too, so
  the gain of each layer is measured where it happens;
* for ReLU outputs, the fraction of units that never fire on any sample; for
  tanh/sigmoid/recurrent outputs, the fraction of values at the saturated ends.

Container modules (a transformer block, a ResNet block) get a hook too: where one
returns a tensor of its input's shape, the per-unit correlation of its output with
its input says whether a skip path carries the signal past its layers (a residual
block), so that the layers of a residual branch are not read as a chain in series.

It also evaluates the user's loss on the model's outputs and on two reference
outputs of the same shape: an *uninformative* one (zero logits, i.e. uniform
probabilities; zero for regression) and the best *constant* one (the class
frequencies, or the target mean, of the same batches). Given a second copy of the
model, it re-initialises that copy with PyTorch's defaults (every module's own
``reset_parameters``) and evaluates the loss on the same batches: what this
architecture, data and loss give at step 0 when the initialisation is the standard
one. A loss at init far above the uninformative one that the default init
reproduces (a contrastive objective with a temperature, distance-based siamese
logits, regression targets far smaller than a default head's outputs) is a property
of the setup, not of the initial weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from dldoctor.core.loss_kinds import ELEMENTWISE, LOSSES, loss_name
from dldoctor.runtime.tensors import iter_tensors

_NORMS = (_BatchNorm, _InstanceNorm, nn.LayerNorm, nn.GroupNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def role_of(module: nn.Module) -> str:
    """What a module does, as far as signal scale is concerned."""
    if isinstance(module, (nn.Linear, _ConvNd)):
        return "linear"
    if isinstance(module, (nn.ReLU, nn.ReLU6)):  # before Hardtanh: ReLU6 subclasses it
        return "relu"
    if isinstance(module, (nn.Tanh, nn.Hardtanh)):
        return "tanh"
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return "sigmoid"
    if isinstance(module, nn.RNNBase):
        # Outputs of LSTM/GRU and tanh RNNs are bounded by tanh; a ReLU RNN's are not.
        return "rnn-relu" if getattr(module, "nonlinearity", "tanh") == "relu" else "rnn"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    return "other"


def unit_axis(module: nn.Module, t: torch.Tensor, producer_axis: int | None) -> int:
    """The axis that indexes units: channels of conv-like layers, the last one otherwise."""
    if isinstance(module, (_ConvNd, _BatchNorm, _InstanceNorm, nn.GroupNorm)):
        return 1
    if isinstance(module, (nn.Linear, nn.RNNBase, nn.LayerNorm, nn.Embedding)):
        return t.dim() - 1
    if producer_axis is not None:
        return producer_axis
    return t.dim() - 1 if t.dim() == 3 else 1


@dataclasses.dataclass(frozen=True)
class LayerInit:
    """One module call at step 0, pooled over the probed batches.

    ``signal``/``in_signal``: root mean over units of each unit's variance across
    samples and positions. ``diversity``: root mean over samples and positions of
    the variance across units of each unit's deviation from its own mean (equal to
    ``signal`` for independent units, 0 when all units vary identically).
    ``dead_unit_frac``: units <= 0 for every sample and position (ReLU outputs only).
    ``saturated_frac``: values with |y| > 0.99 (tanh-bounded) or outside
    [0.01, 0.99] (sigmoid). ``call``: 0 for a module's first call in a forward pass,
    1 for its second (a shared activation module), and so on. ``mean``: the mean
    output; ``unit_mean_spread``: the standard deviation across units of each
    unit's mean (a shift shared by all units shows as |mean| >> unit_mean_spread).
    ``follows`` (normalisation layers): the mean per-unit correlation of this call's input
    with the previous normalisation call's input, when they have the same shape: near 1
    when a skip path carries the stream from one to the other (pre-LN and post-LN
    residual blocks), about 0 when the layers between them are a chain in series.
    """

    path: str
    type_name: str
    role: str
    call: int
    out_shape: tuple[int, ...]
    units: int
    values_per_unit: int
    out_rms: float
    mean: float
    unit_mean_spread: float
    signal: float
    diversity: float
    in_signal: float | None = None
    in_rms: float | None = None
    dead_unit_frac: float | None = None
    saturated_frac: float | None = None
    weight_std: float | None = None
    default_weight_std: float | None = None
    bias_mean: float | None = None
    follows: float | None = None

    @property
    def gain(self) -> float | None:
        """Output signal over input signal (linear maps with a varying input only)."""
        if self.role != "linear" or self.in_signal is None or not self.in_signal > 0:
            return None
        return self.signal / self.in_signal


@dataclasses.dataclass(frozen=True)
class LossAtInit:
    """The loss at step 0 next to what an uninformative and a constant output would get.

    ``kind``: the loss's kind (``core.loss_kinds``). ``output_spread``: the standard deviation of the
    logits across classes (mean over rows) for cross-entropy/NLL, the root mean square of the logits for BCE with
    logits, the root mean square of the outputs for regression losses.
    """

    kind: str
    loss: float
    uninformative: float | None
    prior: float | None
    num_classes: int | None
    output_spread: float
    target_rms: float | None = None
    #: the loss on the same batches after re-initialising a copy with PyTorch's defaults
    default_init_loss: float | None = None


@dataclasses.dataclass(frozen=True)
class InitStats:
    """Step 0 of the model: its leaf layers in execution order, the loss, and its skip paths.

    ``skips``: for every container module (one with children) whose output has its input's
    shape, its path and the mean over units of the correlation, across samples and
    positions, between a unit's input and its output. A residual block ``x + f(x)``
    scores near 1 while its branch is small against the stream (1 / sqrt(1 + r^2) for
    a branch r times the stream's spread); a container whose layers mix units through
    random weights scores about 0.
    """

    layers: tuple[LayerInit, ...]
    loss: LossAtInit | None
    samples: int
    batches: int
    skips: tuple[tuple[str, float], ...] = ()


class _SkipAcc:
    """Per-unit sums for the input-output correlation of one container module."""

    def __init__(self) -> None:
        self.sums: list[torch.Tensor] | None = None  # x, y, xx, yy, xy per unit
        self.n = 0

    def add(self, x: torch.Tensor, y: torch.Tensor, axis: int) -> None:
        xs = x.detach().double().movedim(axis, 0).reshape(x.shape[axis], -1)
        ys = y.detach().double().movedim(axis, 0).reshape(y.shape[axis], -1)
        parts = [xs.sum(1), ys.sum(1), (xs * xs).sum(1), (ys * ys).sum(1), (xs * ys).sum(1)]
        if self.sums is None:
            self.sums = parts
        elif self.sums[0].shape == parts[0].shape:
            self.sums = [a + b for a, b in zip(self.sums, parts)]
        else:
            return
        self.n += xs.shape[1]

    def correlation(self) -> float | None:
        if self.sums is None or self.n < 2:
            return None
        sx, sy, sxx, syy, sxy = (t / self.n for t in self.sums)
        cov = sxy - sx * sy
        var = ((sxx - sx * sx).clamp(min=0) * (syy - sy * sy).clamp(min=0)).sqrt()
        live = var > 1e-24
        if not bool(live.any()):
            return None
        return float((cov[live] / var[live]).mean())


class _Acc:
    """Running sums for one (module, call index)."""

    def __init__(self, module: nn.Module, path: str, role: str, call: int):
        self.module, self.path, self.role, self.call = module, path, role, call
        self.shape: tuple[int, ...] = ()
        self.sq = 0.0
        self.n = 0
        self.unit_sum: torch.Tensor | None = None
        self.unit_sq: torch.Tensor | None = None
        self.unit_n = 0
        self.avg_sum = 0.0
        self.avg_sq = 0.0
        self.unit_max: torch.Tensor | None = None
        self.sat = 0
        self.in_unit_sum: torch.Tensor | None = None
        self.in_unit_sq: torch.Tensor | None = None
        self.in_unit_n = 0
        self.in_sq = 0.0
        self.in_n = 0

    @staticmethod
    def _per_unit(x: torch.Tensor, axis: int) -> torch.Tensor:
        """[units, samples*positions] view of ``x``."""
        return x.movedim(axis, 0).reshape(x.shape[axis], -1)

    def add(self, x: torch.Tensor, axis: int, inp: torch.Tensor | None, in_axis: int | None) -> None:
        # Every element-wise square is taken once, per unit; totals are sums of those.
        x = x.detach().double()
        self.shape = tuple(x.shape)
        self.n += x.numel()
        per = self._per_unit(x, axis)
        units = per.shape[0]
        if self.unit_sum is None or self.unit_sq is None or self.unit_max is None:  # all three, on the first call
            self.unit_sum = torch.zeros(units, dtype=torch.float64)
            self.unit_sq = torch.zeros(units, dtype=torch.float64)
            self.unit_max = torch.full((units,), -math.inf, dtype=torch.float64)
        unit_sq = (per * per).sum(1)
        self.sq += float(unit_sq.sum())
        self.unit_sum += per.sum(1)
        self.unit_sq += unit_sq
        self.unit_n += per.shape[1]
        # The average over units at each sample/position: its variance is the part of
        # the signal that all units share (diversity^2 = signal^2 - that variance).
        avg = per.mean(0)
        self.avg_sum += float(avg.sum())
        self.avg_sq += float(torch.dot(avg, avg))
        self.unit_max = torch.maximum(self.unit_max, per.amax(1))
        if self.role in ("tanh", "rnn"):
            self.sat += int((x.abs() > 0.99).sum())
        elif self.role == "sigmoid":
            self.sat += int(((x < 0.01) | (x > 0.99)).sum())
        if inp is not None and in_axis is not None:
            xi = inp.detach().double()
            self.in_n += xi.numel()
            pi = self._per_unit(xi, in_axis)
            if self.in_unit_sum is None or self.in_unit_sq is None:  # both, on the first call
                self.in_unit_sum = torch.zeros(pi.shape[0], dtype=torch.float64)
                self.in_unit_sq = torch.zeros(pi.shape[0], dtype=torch.float64)
            in_unit_sq = (pi * pi).sum(1)
            self.in_sq += float(in_unit_sq.sum())
            self.in_unit_sum += pi.sum(1)
            self.in_unit_sq += in_unit_sq
            self.in_unit_n += pi.shape[1]

    @staticmethod
    def _signal(total: torch.Tensor, sq: torch.Tensor, n: int) -> float:
        if n < 2:
            return 0.0
        mean = total / n
        var = (sq / n - mean.pow(2)).clamp(min=0)
        # Activations are float32 (relative precision ~1e-7): spreads below 1e-6 of the
        # layer's rms are rounding noise, not signal.
        var = torch.where(var <= 1e-12 * float((sq / n).mean()), torch.zeros_like(var), var)
        return float(var.mean().sqrt())

    def result(self) -> LayerInit:
        unit_sum, unit_sq, unit_max = self.unit_sum, self.unit_sq, self.unit_max
        units = int(unit_sum.shape[0]) if unit_sum is not None else 0
        signal = self._signal(unit_sum, unit_sq, self.unit_n) \
            if units and unit_sum is not None and unit_sq is not None else 0.0
        unit_means = unit_sum / max(1, self.unit_n) if units and unit_sum is not None \
            else torch.zeros(1, dtype=torch.float64)
        diversity = 0.0
        if units > 1 and self.unit_n > 1:
            shared = max(0.0, self.avg_sq / self.unit_n - (self.avg_sum / self.unit_n) ** 2)
            diversity = math.sqrt(max(0.0, signal ** 2 - shared))
        extra: dict[str, Any] = {}
        if self.role == "relu" and units and unit_max is not None:
            extra["dead_unit_frac"] = float((unit_max <= 0).double().mean())
        if self.role in ("tanh", "rnn", "sigmoid") and self.n:
            extra["saturated_frac"] = self.sat / self.n
        if self.in_unit_sum is not None and self.in_unit_sq is not None:
            extra["in_signal"] = self._signal(self.in_unit_sum, self.in_unit_sq, self.in_unit_n)
            extra["in_rms"] = math.sqrt(self.in_sq / self.in_n) if self.in_n else 0.0
        weight = getattr(self.module, "weight", None)
        if self.role == "linear" and isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            with torch.no_grad():
                w = weight.detach().double()
                fan_in = w[0].numel()  # as torch's own init computes it
                extra["weight_std"] = float(w.std()) if w.numel() > 1 else 0.0
                # PyTorch's default: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
                extra["default_weight_std"] = 1.0 / math.sqrt(3.0 * max(1, fan_in))
                bias = getattr(self.module, "bias", None)
                if isinstance(bias, torch.Tensor) and bias.numel():
                    extra["bias_mean"] = float(bias.detach().double().mean())
        return LayerInit(
            path=self.path, type_name=type(self.module).__name__, role=self.role, call=self.call,
            out_shape=self.shape, units=units, values_per_unit=self.unit_n,
            out_rms=math.sqrt(self.sq / self.n) if self.n else 0.0, mean=float(unit_means.mean()),
            unit_mean_spread=float(unit_means.std(unbiased=False)), signal=signal, diversity=diversity, **extra,
        )


def _first_float(obj: Any) -> torch.Tensor | None:
    return next((t for t in iter_tensors(obj) if t.is_floating_point() and t.numel() > 0), None)


def _loss_kind(loss_fn: Any) -> str | None:
    """The loss's kind (``core.loss_kinds``) when it has an uninformative reference: a
    classification or regression loss (not KL divergence, whose targets are distributions)."""
    entry = LOSSES.get(loss_name(loss_fn))
    return entry.kind if entry is not None and entry.kind and entry.task else None


def _class_axis_view(t: torch.Tensor) -> torch.Tensor:
    """[classes, everything else] for an output laid out [N, C, ...]."""
    return t.movedim(1, 0).reshape(t.shape[1], -1) if t.dim() >= 2 else t.reshape(1, -1)


def _references(kind: str, out: torch.Tensor, targets: Sequence[torch.Tensor]) -> tuple[Callable, Callable] | None:
    """Factories of (uninformative output, best constant output) shaped like ``out``."""
    classes = out.shape[1] if out.dim() >= 2 else 1
    if kind in ("logits", "log-probs"):
        if classes < 2:
            return None
        counts = torch.zeros(classes, dtype=torch.float64)
        for tgt in targets:
            if tgt.is_floating_point() and tgt.shape == out.shape:  # class probabilities
                counts += _class_axis_view(tgt.double()).sum(1).cpu()
            elif not tgt.is_floating_point():
                valid = tgt[(tgt >= 0) & (tgt < classes)].long().reshape(-1).cpu()
                counts += torch.bincount(valid, minlength=classes).double()
        if counts.sum() <= 0:
            return None
        log_p = (counts / counts.sum()).clamp(min=1e-8).log()
        shape = [1, classes] + [1] * (out.dim() - 2)
        uniform = -math.log(classes) if kind == "log-probs" else 0.0
        return (lambda o: torch.full_like(o, uniform),
                lambda o: log_p.to(o.device, o.dtype).view(shape).expand_as(o).clone())
    floats = [t for t in targets if t.is_floating_point()]
    if not floats:
        return None
    if all(t.dim() >= 2 and t.shape[1:] == floats[0].shape[1:] for t in floats) and floats[0].dim() >= 2:
        pooled = torch.cat([_class_axis_view(t.double()) for t in floats], dim=1)
        mean = pooled.mean(1)
        shape = [1, mean.numel()] + [1] * (out.dim() - 2)
    else:
        mean = torch.cat([t.double().reshape(-1) for t in floats]).mean().reshape(1)
        shape = [1] * out.dim()
    if kind in ("binary-logits", "probs"):
        p = mean.clamp(1e-6, 1 - 1e-6)
        const = (p / (1 - p)).log() if kind == "binary-logits" else p
        zero = 0.0 if kind == "binary-logits" else 0.5
    else:
        const, zero = mean, 0.0
    if const.numel() != 1 and (out.dim() < 2 or out.shape[1] != const.numel()):
        const = const.mean().reshape(1)
        shape = [1] * out.dim()
    return (lambda o: torch.full_like(o, zero),
            lambda o: const.to(o.device, o.dtype).view(shape).expand_as(o).clone())


def _output_spread(kind: str, out: torch.Tensor) -> float:
    x = out.detach().double()
    if kind in ("logits", "log-probs") and x.dim() >= 2 and x.shape[1] > 1:
        return float(_class_axis_view(x).std(dim=0).mean())
    return float(x.pow(2).mean().sqrt())


def _terms(kind: str, out: torch.Tensor) -> int:
    """How many terms a ``reduction='sum'`` loss adds up for this output."""
    if kind in ("logits", "log-probs") and out.dim() >= 2:
        return max(1, out.numel() // out.shape[1])
    return max(1, out.numel())


def _loss_at_init(loss_fn: Any, kind: str, runs: list[tuple[Any, torch.Tensor, Any]]) -> LossAtInit | None:
    """Loss at init and its references, per term (a summed loss is divided by its number of terms)."""
    outs = [o for _, o, _ in runs]
    found = [next(iter_tensors(tg), None) for _, _, tg in runs]
    if not outs or any(t is None for t in found):
        return None
    targets = [t for t in found if t is not None]
    refs = _references(kind, outs[0], targets)
    summed = getattr(loss_fn, "reduction", "mean") == "sum"
    losses, uninf, prior = [], [], []
    for outputs, out, tgt in runs:
        scale = 1.0 / _terms(kind, out) if summed else 1.0
        losses.append(float(loss_fn(outputs, tgt)) * scale)
        if refs is not None:
            uninf.append(float(loss_fn(refs[0](out), tgt)) * scale)
            prior.append(float(loss_fn(refs[1](out), tgt)) * scale)
    target_rms = None
    if kind in ELEMENTWISE:
        floats = [t.double() for t in targets if t.is_floating_point()]
        target_rms = float(torch.cat([t.reshape(-1) for t in floats]).pow(2).mean().sqrt()) if floats else None
    out0 = outs[0]
    return LossAtInit(
        kind=kind, loss=sum(losses) / len(losses),
        uninformative=sum(uninf) / len(uninf) if uninf else None,
        prior=sum(prior) / len(prior) if prior else None,
        num_classes=int(out0.shape[1]) if kind in ("logits", "log-probs") and out0.dim() >= 2 else None,
        output_spread=sum(_output_spread(kind, o) for o in outs) / len(outs), target_rms=target_rms,
    )


def _step_zero_mode(model: nn.Module) -> None:
    """Training mode with dropout off: its 1/(1-p) rescaling of the kept units is
    regularisation noise, not the initialisation's doing (p=0.9 alone inflates the
    initial logits tenfold). Batch norm stays in training mode, as in the first step."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()


def reset_to_defaults(model: nn.Module) -> int:
    """Re-draw every parameter whose module knows its default init; the number of modules reset.

    ``reset_parameters`` is torch's contract for a layer's default initialisation (Linear,
    convolutions, embeddings, norms, recurrent layers; MultiheadAttention names it
    ``_reset_parameters``). Modules run in ``modules()`` order, so a weight shared by two
    modules (an output layer tied to an embedding) ends with the later one's default.
    Parameters of modules without one (a bare ``nn.Parameter``) keep their values.
    """
    count = 0
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if reset is None and isinstance(module, nn.MultiheadAttention):
            reset = module._reset_parameters
        if callable(reset):
            reset()
            count += 1
    return count


def default_init_loss(model: nn.Module, batches: Sequence[Any], forward: Callable[[nn.Module, Any], tuple[Any, Any]],
                      loss_fn: Callable[[Any, Any], Any], kind: str) -> float | None:
    """The loss per term on ``batches`` of ``model`` (a copy) re-initialised with PyTorch's defaults."""
    if not reset_to_defaults(model):
        return None
    _step_zero_mode(model)
    runs: list[tuple[Any, torch.Tensor, Any]] = []
    with torch.no_grad():
        for batch in batches:
            outputs, targets = forward(model, batch)
            out = _first_float(outputs)
            if out is not None:
                runs.append((outputs, out, targets))
        found = _loss_at_init(loss_fn, kind, runs) if runs else None
    return found.loss if found is not None else None


def measure_init(
    model: nn.Module,
    batches: Sequence[Any],
    forward: Callable[[nn.Module, Any], tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Any],
    default_model: nn.Module | None = None,
) -> InitStats:
    """Run ``batches`` through ``model`` (a copy, in train mode, dropout off) and summarise step 0.

    ``default_model``, a second copy, is re-initialised with PyTorch's defaults to give the
    loss at init that the standard initialisation reaches on the same batches.
    """
    _step_zero_mode(model)
    paths: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(module, name)
    accs: dict[tuple[str, int], _Acc] = {}
    order: list[tuple[str, int]] = []
    state: dict[str, Any] = {"calls": {}, "axes": {}, "failed": set()}

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        out = _first_float(output)
        if out is None or out.dim() < 2 or out.shape[0] < 1:
            return
        path = paths[module]
        index = state["calls"].get(path, 0)
        state["calls"][path] = index + 1
        key = (path, index)
        role = role_of(module)
        inp = _first_float(args)
        # An element-wise module (activation, dropout) keeps the unit axis of whatever produced its input.
        same = inp is not None and tuple(inp.shape) == tuple(out.shape)
        producer = state["axes"].get(tuple(out.shape)) if same else None
        axis = unit_axis(module, out, producer)
        in_axis = None
        if role in ("linear", "rnn", "rnn-relu") and inp is not None and inp.dim() >= 2:
            in_axis = 1 if isinstance(module, _ConvNd) else inp.dim() - 1
        if key not in accs:
            accs[key] = _Acc(module, path, role, index)
            order.append(key)
        elif (first := accs[key].unit_sum) is not None and first.shape[0] != out.shape[axis]:
            return  # this call's layout differs from the first batch's: pool only like with like
        accs[key].add(out, axis, inp if in_axis is not None else None, in_axis)
        state["axes"][tuple(out.shape)] = axis
        if role == "norm" and inp is not None:
            # The stream between two normalisation layers: does this one's input still follow
            # the previous one's (a skip path around the layers between them)?
            previous = state.get("norm_input")
            if previous is not None and previous.shape == inp.shape:
                follows.setdefault(key, _SkipAcc()).add(previous, inp, axis)
            state["norm_input"] = inp.detach()

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        try:
            record(module, args, output)
        except Exception:  # a summary that cannot be taken must not break the user's forward
            state["failed"].add(paths.get(module, "?"))

    skips: dict[str, _SkipAcc] = {}
    follows: dict[tuple[str, int], _SkipAcc] = {}

    def skip_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        try:
            inp, out = _first_float((args, kwargs)), _first_float(output)
            if inp is None or out is None or inp.shape != out.shape or out.dim() < 2:
                return
            axis = out.dim() - 1 if out.dim() == 3 else 1
            skips.setdefault(paths[module], _SkipAcc()).add(inp, out, axis)
        except Exception:  # as above: never break the user's forward
            state["failed"].add(paths.get(module, "?"))

    leaves = {m for m in paths if not any(True for _ in m.children())}
    handles = [m.register_forward_hook(hook) for m in paths if m in leaves]
    handles += [m.register_forward_hook(skip_hook, with_kwargs=True) for m in paths if m not in leaves]
    runs: list[tuple[Any, torch.Tensor, Any]] = []
    samples = 0
    try:
        with torch.no_grad():
            for batch in batches:
                state["calls"] = {}
                state["norm_input"] = None
                outputs, targets = forward(model, batch)
                out = _first_float(outputs)
                if out is not None:
                    samples += int(out.shape[0]) if out.dim() else 1
                    runs.append((outputs, out, targets))
    finally:
        for handle in handles:
            handle.remove()
    kind = _loss_kind(loss_fn)
    loss = None
    if kind is not None and runs:
        try:
            with torch.no_grad():
                loss = _loss_at_init(loss_fn, kind, runs)
        except Exception:  # a reference output the loss cannot take: judge without it
            loss = None
        if loss is not None and default_model is not None:
            # A model that cannot be re-initialised is judged against the references only.
            with contextlib.suppress(Exception):
                loss = dataclasses.replace(
                    loss, default_init_loss=default_init_loss(default_model, batches, forward, loss_fn, kind))
    measured = ((path, acc.correlation()) for path, acc in skips.items())
    layers = tuple(dataclasses.replace(accs[k].result(), follows=follows[k].correlation()) if k in follows
                   else accs[k].result() for k in order)
    return InitStats(layers=layers, loss=loss, samples=samples,
                     batches=len(runs), skips=tuple((path, c) for path, c in measured if c is not None))
