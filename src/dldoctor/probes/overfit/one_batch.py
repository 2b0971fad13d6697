"""Train a fresh model copy on one fixed batch and record what happens, step by step.

One function, :func:`overfit`, serves the baseline run and every experiment of the
overfit stage: an :class:`Setup` says what to change (learning-rate scale, negated
loss, regularisation off, labels permuted, inputs zeroed, fewer samples). Every run
starts from the same initial weights (``ctx.fresh_model()``) under the same seed, so
two runs differ only by the setup. Records are plain numbers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
from torch import nn

from dldoctor.core.context import unpack_batch
from dldoctor.core.errors import CheckIncomplete
from dldoctor.probes.accuracy import correct_share
from dldoctor.probes.nonfinite import Localisation, localise
from dldoctor.probes.overfit.heldout import recalibrate_batchnorm
from dldoctor.probes.resources.holders import roots_of
from dldoctor.probes.resources.monitor import ResourceRecord, StepMonitor
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import batch_size_of, iter_tensors, l2_norms

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What an experiment changes relative to the user's own training step."""

    lr_scale: float = 1.0
    negate_loss: bool = False
    no_regularization: bool = False
    permute_labels: bool = False
    zero_inputs: bool = False
    samples: int | None = None
    batches: int = 1
    unfreeze: bool = False
    """Every parameter trainable (``requires_grad=True``) before the optimiser is built."""
    run_through: bool = False
    """Train for every step of the budget, past convergence (a NaN that only comes later shows)."""
    standardize_inputs: bool = False
    """Every floating-point input standardised per feature/channel over the batch (not the targets)."""

    @property
    def key(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self))

    @property
    def label(self) -> str:
        parts = []
        if self.lr_scale != 1.0:
            parts.append(f"lr x{self.lr_scale:g}")
        if self.negate_loss:
            parts.append("negated loss")
        if self.no_regularization:
            parts.append("no weight decay / dropout")
        if self.permute_labels:
            parts.append("labels permuted")
        if self.zero_inputs:
            parts.append("inputs zeroed")
        if self.samples:
            parts.append(f"{self.samples} samples")
        if self.batches > 1:
            parts.append(f"{self.batches} batches")
        if self.unfreeze:
            parts.append("every parameter trainable")
        if self.run_through:
            parts.append("no early stop")
        if self.standardize_inputs:
            parts.append("inputs standardised")
        return ", ".join(parts) or "as configured"


@dataclasses.dataclass(frozen=True)
class Curve:
    """The record of one overfit run.

    Attributes:
        losses: the user's loss at each step (before the step's update). In the
            negated-loss experiment, its magnitude: whether the sign error is in the loss
            (a negated NLL, a -MSE score) or in the optimiser (``maximize=True``), once
            corrected the true, non-negative loss is driven to zero, so the user's loss
            approaches zero from either side.
        metric: the task metric on the trained samples at each step (accuracy for
            classification, MSE for regression), measured independently of the
            user's loss; empty when it cannot be computed.
        grad_norms: global gradient norm at each step (before clipping).
        layer_grad: per module path, the median over steps of its parameters' joint
            gradient norm.
        layer_grad_max: per module path, the largest joint gradient norm of any step.
        layer_update_ratio: per module path, the median ||update|| / ||weight||.
        layer_weight: per module path, the joint norm of its weights at the end.
        layer_order: module paths in the order their parameters are registered.
        dead_units: per activation module, the fraction of units that never fire on
            the batch at the last step (ReLU-like: output <= 0 for every sample).
        first_nonfinite: the first step whose loss or gradients were NaN/Inf.
        lr: the learning rate of the first parameter group (after scaling).
        nonfinite: that step re-run from the same weights (and the same random draws)
            with every operation watched: the first operation that made a NaN/Inf out of
            finite values, and the user's line (``probes.nonfinite.localise``); None when
            the run stayed finite.
    """

    setup: Setup
    losses: tuple[float, ...]
    metric: tuple[float, ...]
    grad_norms: tuple[float, ...]
    layer_grad: dict[str, float]
    layer_grad_max: dict[str, float]
    layer_update_ratio: dict[str, float]
    layer_weight: dict[str, float]
    layer_order: tuple[str, ...]
    dead_units: dict[str, float]
    first_nonfinite: int | None
    lr: float
    seconds: float
    stopped_early: bool
    metric_name: str = ""
    heldout_metric: float | None = None
    heldout_chance: float | None = None
    heldout_samples: int = 0
    train_chance: float | None = None
    """The metric an input-independent predictor gets on the training batches (with a held-out evaluation)."""
    heldout_constant: float | None = None
    """The best any constant prediction can score on the held-out samples (their own majority class or mean)."""
    label: str = ""
    resources: ResourceRecord = ResourceRecord()
    """Per-step memory and step time, and what the model and loss hold (resource checks)."""
    nonfinite: Localisation | None = None

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def gradient_overflow(self) -> bool:
        """The run stopped because the gradients turned NaN/Inf while the loss was finite."""
        return (self.first_nonfinite is not None and len(self.grad_norms) == len(self.losses)
                and math.isfinite(self.losses[-1]) and not math.isfinite(self.grad_norms[-1]))


def _metric(outputs: Any, targets: Any, task: str) -> tuple[str, float] | None:
    out = next(iter_tensors(outputs), None)
    tgt = next(iter_tensors(targets), None)
    if out is None or tgt is None or not out.is_floating_point():
        return None
    with torch.no_grad():
        if task == "classification":
            hits, samples = correct_share(out, tgt)  # ignored targets (-100, padding) left out
            return ("accuracy", hits / samples) if samples else None
        if task == "regression" and out.numel() == tgt.numel():
            return "mse", float(((out.reshape(-1).float() - tgt.reshape(-1).float()) ** 2).mean())
    return None


def _replace_except(batch: Any, keep: Any, fn) -> Any:
    """Apply ``fn`` to every tensor of ``batch`` except the object ``keep`` (the targets)."""
    if isinstance(batch, torch.Tensor):
        return batch if batch is keep else fn(batch)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_replace_except(v, keep, fn) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_replace_except(v, keep, fn) for v in batch)
    if isinstance(batch, dict):
        return {k: _replace_except(v, keep, fn) for k, v in batch.items()}
    return batch


def slice_range(batch: Any, start: int, stop: int) -> Any:
    """Samples ``start:stop`` of every tensor in a nested batch (scalars left alone)."""
    if isinstance(batch, torch.Tensor):
        return batch[start:stop] if batch.dim() > 0 else batch
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(slice_range(v, start, stop) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(slice_range(v, start, stop) for v in batch)
    if isinstance(batch, dict):
        return {k: slice_range(v, start, stop) for k, v in batch.items()}
    return batch


def slice_batch(batch: Any, n: int) -> Any:
    """The first ``n`` samples of every tensor in a batch."""
    return slice_range(batch, 0, n)


def _module_of(name: str) -> str:
    return name.rpartition(".")[0] or name


def disable_regularization(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        if isinstance(module, (nn.MultiheadAttention,)):
            module.dropout = 0.0
    for group in optimizer.param_groups:
        if "weight_decay" in group:
            group["weight_decay"] = 0.0


#: Steps between two measurements of the update-to-weight ratios.
RATIO_EVERY = 5


def overfit(ctx, setup: Setup, steps: int, target_loss_fn, batches: list[Any], heldout: Any = None,
            label: str = "") -> Curve:
    """Train a fresh model on ``batches`` (cycled) for up to ``steps`` steps.

    ``target_loss_fn(initial_loss) -> float`` gives the loss at which a one-batch run
    stops early (converged). Runs under the context's seed. The steps are fixed (the
    config's, or convergence): ``ctx.time_left()`` is only a safety limit, and reaching
    it raises ``CheckIncomplete`` rather than returning a curve cut short.
    ``heldout``, when given, is evaluated at the end (``heldout_metric``), with the
    chance level of that batch (``heldout_chance``).
    """
    if setup.samples:
        batches = [slice_batch(b, setup.samples) for b in batches]
    # With every input zeroed, the targets still come from the batch as it was: a forward that
    # builds them from the inputs (a language model's shifted tokens, labels masked where the
    # attention mask is 0) would otherwise train on zeroed targets.
    fixed_targets = None
    if setup.standardize_inputs and ctx.spec.forward is None:
        batches = [standardize_inputs(b) for b in batches]
    if setup.zero_inputs:
        if ctx.spec.forward is not None:
            fixed_targets = [forward_targets(b, ctx) for b in batches]
        batches = [zero_inputs(b, ctx) for b in batches]
    task = ctx.task
    loss_fn = ctx.spec.loss_fn
    start = time.perf_counter()
    with isolated_rng(ctx.seed):
        model = ctx.fresh_model()
        if setup.unfreeze:
            model.requires_grad_(True)
        optimizer = ctx.make_optimizer(model)
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * setup.lr_scale
        if setup.no_regularization:
            disable_regularization(model, optimizer)
        scheduler = ctx.spec.scheduler(optimizer) if ctx.spec.scheduler else None
        clip = ctx.spec.grad_clip_norm
        names = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        order = tuple(dict.fromkeys(_module_of(n) for n, _ in names))
        grad_hist: dict[str, list[float]] = {m: [] for m in order}
        ratio_hist: dict[str, list[float]] = {m: [] for m in order}
        # losses, metric, grad norms, and two lists per module: the records this loop grows per step
        monitor = StepMonitor(ctx.device, lambda: roots_of(model, loss_fn, ctx.spec.forward, optimizer),
                              own_records=3 + 2 * len(order))
        weight_norm: dict[str, float] = {}
        dead: dict[str, float] = {}
        act_modules = {m: path for path, m in model.named_modules() if isinstance(m, ACTIVATIONS[:6])}
        last_acts: dict[str, tuple[int, int]] = {}

        def act_hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() >= 2 and output.shape[0] > 1:
                with torch.no_grad():
                    per_unit = output.detach().transpose(0, 1).reshape(output.shape[1], -1).amax(dim=1)
                    last_acts[act_modules[module]] = (int((per_unit <= 0).sum()), per_unit.numel())

        perms = [torch.randperm(len(next(iter_tensors(b)))) for b in batches] if setup.permute_labels else None

        def step_forward(m: nn.Module, batch: Any, index: int) -> tuple[Any, Any]:
            outputs, targets = ctx.forward_fn(m, batch)
            if fixed_targets is not None:
                targets = fixed_targets[index]
            if perms is not None:
                targets = _permute(targets, perms[index])
            return outputs, targets

        step_rng = None  # the generators' state before the current step's forward (dropout masks)
        nonfinite = None
        losses: list[float] = []
        metric: list[float] = []
        metric_name = ""
        gnorms: list[float] = []
        first_nonfinite = None
        stopped = False
        target = None
        lr0 = float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else 0.0
        handles: list = []
        slowest = 0.0
        modules = [_module_of(n) for n, _ in names]
        params = [p for _, p in names]
        model.train()
        try:
            for step in range(steps):
                index = step % len(batches)
                batch = batches[index]
                step_start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                step_rng = _rng_state()
                outputs, targets = step_forward(model, batch, index)
                loss = loss_fn(outputs, targets)
                value = float(loss.detach())
                if setup.negate_loss:
                    loss = -loss
                    value = abs(value)
                losses.append(value)
                m = _metric(outputs, targets, task)
                if m is not None:
                    metric_name = m[0]
                    metric.append(m[1])
                if not math.isfinite(value):
                    first_nonfinite = step
                    break
                loss.backward()
                with_grad = [i for i, p in enumerate(params) if p.grad is not None]
                grad_norms = l2_norms([params[i].grad for i in with_grad])
                module_sq: dict[str, float] = {}
                for i, g in zip(with_grad, grad_norms):
                    module_sq[modules[i]] = module_sq.get(modules[i], 0.0) + g * g
                for path, squares in module_sq.items():
                    grad_hist[path].append(math.sqrt(squares))
                finite = all(math.isfinite(g) for g in grad_norms)
                gnorms.append(math.sqrt(sum(g * g for g in grad_norms)) if finite else float("nan"))
                if not finite:
                    first_nonfinite = step
                    break
                # Update-to-weight ratios are medians over the run: every few steps is
                # enough, and spares a copy of every weight at every step.
                before = [p.detach().clone() for p in params] if step % RATIO_EVERY == 0 else None
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if before is not None:
                    w_norms = l2_norms(before)
                    u_norms = l2_norms([p.detach() - b for p, b in zip(params, before)])
                    upd_sq: dict[str, float] = {}
                    w_sq: dict[str, float] = {}
                    for path, w, u in zip(modules, w_norms, u_norms):
                        w_sq[path] = w_sq.get(path, 0.0) + w * w
                        upd_sq[path] = upd_sq.get(path, 0.0) + u * u
                    for path, w2 in w_sq.items():
                        weight_norm[path] = math.sqrt(w2)
                        if w2 > 0:
                            ratio_hist[path].append(math.sqrt(upd_sq[path] / w2))
                step_s = time.perf_counter() - step_start
                slowest = max(slowest, step_s)
                monitor.step(0.0, step_s, batch_size_of(targets) or 0)
                if target is None:
                    target = target_loss_fn(losses[0])
                if len(batches) == 1 and value <= target and not setup.run_through:
                    stopped = True
                    break
                if step % 10 == 0:
                    ctx.report_progress(label or setup.label, step, value)
                if step + 1 < steps and ctx.time_left() < max(1.0, 2 * slowest):
                    # A safety limit, not a budget: a curve cut short here would be read
                    # as "slow", "plateau" or "too small" on a busy machine only.
                    timeout = ctx.config.get("run.check_timeout_s")
                    raise CheckIncomplete(
                        f"the overfit run '{label or setup.label}' stopped at the check's safety limit "
                        f"(run.check_timeout_s = {timeout:g} s) after {step + 1} of {steps} steps; its curve "
                        f"would be read as cut short. Raise run.check_timeout_s, or lower overfit.steps / "
                        f"overfit.experiment_steps (--profile quick).")
            if first_nonfinite is not None:
                at = first_nonfinite % len(batches)
                nonfinite = _localise_step(ctx, model, batches[at], lambda m, b: step_forward(m, b, at),
                                           (lambda o, t: -loss_fn(o, t)) if setup.negate_loss else loss_fn, step_rng)
            heldout_metric = heldout_chance = train_chance = heldout_constant = None
            if heldout is not None and first_nonfinite is None:
                recalibrate_batchnorm(model, ctx.forward_fn, batches)
                model.eval()
                with torch.no_grad():
                    out_h, tgt_h = ctx.forward_fn(model, heldout)
                    hm = _metric(out_h, tgt_h, task)
                    if hm is not None:
                        heldout_metric = hm[1]
                        tgt_train = training_targets(ctx, model, batches, fixed_targets)
                        heldout_chance = _chance(tgt_h, tgt_train, hm[0])
                        train_chance = _chance(tgt_train, tgt_train, hm[0])
                        heldout_constant = _chance(tgt_h, tgt_h, hm[0])
            if act_modules and first_nonfinite is None:
                # Units that never fire on the batch, read once after the last update (in
                # training mode, as during the fit; after the held-out evaluation, whose
                # batch-norm statistics this forward would otherwise move).
                model.train()
                handles.extend(m.register_forward_hook(act_hook) for m in act_modules)
                with torch.no_grad():
                    ctx.forward_fn(model, batches[0])
            for path, (n_dead, n_units) in last_acts.items():
                dead[path] = n_dead / max(1, n_units)
        finally:
            for h in handles:
                h.remove()
    med = lambda xs: float(sorted(xs)[len(xs) // 2]) if xs else 0.0  # noqa: E731
    return Curve(
        setup=setup, losses=tuple(losses), metric=tuple(metric), grad_norms=tuple(gnorms),
        layer_grad={m: med(v) for m, v in grad_hist.items()},
        layer_grad_max={m: max(v) if v else 0.0 for m, v in grad_hist.items()},
        layer_update_ratio={m: med(v) for m, v in ratio_hist.items()},
        layer_weight=dict(weight_norm), layer_order=order, dead_units=dead, first_nonfinite=first_nonfinite, lr=lr0,
        seconds=time.perf_counter() - start, stopped_early=stopped, metric_name=metric_name,
        heldout_metric=heldout_metric, heldout_chance=heldout_chance,
        heldout_samples=(batch_size_of(heldout) or 0) if heldout_metric is not None else 0, train_chance=train_chance,
        heldout_constant=heldout_constant, label=label or setup.label,
        resources=monitor.finish(), nonfinite=nonfinite,
    )


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """The torch generators' state (CPU, and CUDA where initialised), to replay a step's random draws."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.random.get_rng_state(), cuda


def _localise_step(ctx, model: nn.Module, batch: Any, forward, loss_fn, rng) -> Localisation | None:
    """Re-run the step that turned non-finite, from the weights it started from, with every operation watched.

    The update of that step never ran (the run stops before it), so the model still holds
    those weights; the generators are put back to where the step began, so dropout draws
    the same masks. A localisation that raises is simply not had.
    """
    if rng is not None:
        torch.random.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state_all(rng[1])
    try:
        return localise(model, batch, forward, loss_fn, ctx.user_roots)
    except Exception:  # the curve already says the run went non-finite; where is a bonus
        return None


def training_targets(ctx, model: nn.Module, batches: list[Any], fixed_targets: list[Any] | None) -> Any:
    """The targets of every training batch of a run, flattened into one tensor (the class
    frequencies or the mean an input-independent predictor would fit), or the first
    batch's targets as they are when they cannot be joined."""
    found = [next(iter_tensors(t), None) for t in (fixed_targets or [ctx.forward_fn(model, b)[1] for b in batches])]
    tensors = [t for t in found if t is not None]
    if not tensors or any(t.dtype != tensors[0].dtype for t in tensors):
        return found[0] if found else None
    return torch.cat([t.reshape(-1) for t in tensors])


def _chance(heldout_targets: Any, train_targets: Any, metric_name: str) -> float | None:
    """The metric an input-independent predictor fitted on the training batch gets on the held-out batch.

    Accuracy: predict the training batch's most frequent class. MSE: predict its mean.
    """
    th = next(iter_tensors(heldout_targets), None)
    tt = next(iter_tensors(train_targets), None)
    if th is None or tt is None:
        return None
    if metric_name == "accuracy":
        tt, th = tt.reshape(-1), th.reshape(-1)
        if not tt.is_floating_point():  # class indices: a negative one is an ignored target, not a class
            tt, th = tt[tt >= 0], th[th >= 0]
        if not len(tt) or not len(th):
            return None
        values, counts = torch.unique(tt, return_counts=True)
        majority = values[counts.argmax()]
        return float((th == majority).float().mean())
    if metric_name == "mse":
        return float(((th.reshape(-1).float() - tt.float().mean()) ** 2).mean())
    return None


def _permute(targets: Any, perm: torch.Tensor) -> Any:
    """Targets with their samples reordered by ``perm``: every tensor whose first dim is the
    batch's, or a whole multiple of it (a forward that flattened (batch, positions) targets
    into one dim moves each sample's block of positions together)."""
    n = len(perm)

    def shuffle(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or len(x) % n:
            return x
        order = perm.to(x.device)
        return x[order] if len(x) == n else x.reshape(n, -1, *x.shape[1:])[order].reshape(x.shape)

    return _replace_except(targets, None, shuffle)


def zero_inputs(batch: Any, ctx) -> Any:
    """The batch with every input tensor zeroed; the targets are left alone.

    With a custom ``forward`` the targets are found by identity: the forward returns
    them, and they are (almost always) one of the batch's own tensors.
    """
    if ctx.spec.forward is None:
        inputs, targets = unpack_batch(batch)
        return (_replace_except(inputs, None, torch.zeros_like), targets)
    return _replace_except(batch, _find_targets(batch, ctx), torch.zeros_like)


def _standardized(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per feature (dim 1) over every other dim; integer tensors unchanged."""
    if not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 2:
        return x
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return (x - mean) / std.clamp_min(1e-8)


def standardize_inputs(batch: Any) -> Any:
    """The batch with its floating-point inputs standardised over the batch; the targets are left alone."""
    inputs, targets = unpack_batch(batch)
    return (_replace_except(inputs, None, _standardized), targets)


def forward_targets(batch: Any, ctx) -> Any:
    """The targets the spec's forward returns for ``batch`` (a fresh model, eval mode, no grad)."""
    model = ctx.fresh_model()
    model.eval()
    with torch.no_grad():
        _, targets = ctx.forward_fn(model, batch)
    return targets


def _find_targets(batch: Any, ctx) -> Any:
    """The tensor of ``batch`` that the spec's forward returns as the targets."""
    tgt = next(iter_tensors(forward_targets(batch, ctx)), None)
    for t in iter_tensors(batch):
        if t is tgt:
            return t
    return tgt
