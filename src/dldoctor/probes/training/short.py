"""A budgeted training run of a fresh model on the full training data.

Evaluates train, validation and (if given) test error at the end of each epoch,
and records, per step, how long the loop waited for the next batch versus how long
the step itself took, and the memory in use after it (for the resource checks).

The run's length is work, never time: the profile's epochs and steps, reduced for an
expensive model by a budget of floating-point operations counted on one training
step (:func:`planned_steps`), so the same input and seed train the same steps on a
fast machine and a busy one. Wall-clock time is only a safety limit: a run that
reaches it raises :class:`CheckIncomplete` (its readers are then incomplete, not
judged on a truncated run).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from dldoctor.core.context import restored_generators, unpack_batch
from dldoctor.core.errors import CheckIncomplete
from dldoctor.probes.accuracy import correct_share
from dldoctor.probes.keys import STEP_GFLOP
from dldoctor.probes.overfit.one_batch import zero_inputs
from dldoctor.probes.resources.holders import roots_of
from dldoctor.probes.resources.monitor import ResourceRecord, StepMonitor
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import batch_size_of, iter_tensors, to_device, trainable_count


@dataclasses.dataclass(frozen=True)
class SplitScore:
    """Loss and error of a model on (a capped part of) one split."""

    loss: float
    error: float | None
    samples: int


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    epoch: int
    steps: int
    seconds: float
    train: SplitScore | None
    val: SplitScore | None
    test: SplitScore | None


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one short run may spend.

    Attributes:
        epochs, steps: the work: the run ends after ``epochs`` epochs or ``steps``
            steps, whichever comes first.
        seconds: a safety limit, not a budget: a run still going after this many
            seconds raises :class:`CheckIncomplete` (it never ends early silently).
        data_fraction: share of each epoch's batches used (the data curve).
        gflop: the most work, in GFLOP (10^9 floating-point operations) of training
            steps, that the run may spend: an expensive model's steps are reduced to
            fit (infinite: no reduction). See :func:`planned_steps`.
        min_steps: the reduction never goes below this many steps.
        section: the config section the numbers come from, named in messages.
    """

    epochs: int
    steps: int
    seconds: float
    data_fraction: float = 1.0
    gflop: float = math.inf
    min_steps: int = 1
    section: str = "training"


def planned_steps(budget: Budget, per_epoch: int | None, step_gflop: float | None) -> int:
    """The steps a run trains: fixed by the budget and the model, never by the clock.

    The profile's ``steps``, and at most ``epochs`` epochs of ``per_epoch`` batches
    (when the loader has a length). An expensive model gets fewer: as many steps as
    ``budget.gflop`` pays for at ``step_gflop`` GFLOP a step, but never fewer than
    ``budget.min_steps`` (a verdict resting on a handful of steps is not worth
    having; such a run may instead reach the safety limit and be incomplete).
    """
    planned = budget.steps
    if per_epoch is not None:
        planned = min(planned, budget.epochs * per_epoch)
    if step_gflop and step_gflop > 0 and math.isfinite(budget.gflop):
        affordable = int(budget.gflop // step_gflop)
        planned = min(planned, max(budget.min_steps, affordable))
    return max(1, planned)


def step_gflop(ctx) -> float | None:
    """GFLOP of one training step (forward, loss, backward) on the first training batch (memoised).

    Counted, not timed: ``torch.utils.flop_counter.FlopCounterMode`` counts the matrix
    products, convolutions and attention of one real step on a fresh copy of the
    model; the count depends only on the model and the batch's shapes, so it is the
    same on every machine. Fused kernels the counter does not see (an LSTM on the
    CPU, for one) would make it too low, so the result is at least ``6 x trainable
    parameters x samples`` (2 for the forward's multiply-adds, 4 for the backward's).
    None when even the step cannot run (the other checks say why).
    """
    def measure() -> float | None:
        batch = to_device(ctx.first_batch("train"), ctx.device)
        with isolated_rng(ctx.seed):
            model = ctx.fresh_model()
            estimate = 6.0 * trainable_count(model) * (batch_size_of(batch) or 1)
            counted = 0.0
            try:
                from torch.utils.flop_counter import FlopCounterMode

                with FlopCounterMode(display=False) as counter:
                    outputs, targets = ctx.forward_fn(model, batch)
                    loss = ctx.spec.loss_fn(outputs, targets)
                    loss.backward()
                counted = float(counter.get_total_flops())
            except Exception:  # a step that cannot run, or ops the counter cannot follow
                counted = 0.0
            del model
        flops = max(counted, estimate)
        return flops / 1e9 if flops > 0 else None

    return ctx.measure(STEP_GFLOP, measure)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """The record of one budgeted run.

    Attributes:
        epochs: per-epoch evaluation (the last one may be partial).
        stopped_by: "epochs" when the planned epochs ran, else "steps" (the step budget,
            possibly reduced for an expensive model, ended it), "nan" or "caller"
            (``on_epoch`` asked to stop). Never the clock: a run that reaches its safety
            limit raises ``CheckIncomplete`` instead of returning.
        error_name: what ``error`` means: "1 - accuracy" or "relative MSE" (MSE over the
            variance of the training targets: 1.0 is the mean predictor).
        parameters: trainable parameter count of the model.
        budget: the budget, with ``steps`` set to the steps planned for this model
            (:func:`planned_steps`).
        resources: the per-step resource record (time waiting for the loader and in the
            step, memory in use, snapshots of what the model, loss and dataset hold) for
            the resource checks.
    """

    epochs: tuple[EpochRecord, ...]
    stopped_by: str
    error_name: str
    parameters: int
    budget: Budget
    resources: ResourceRecord = ResourceRecord()
    step_gflop: float | None = None

    @property
    def last(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None

    def val_errors(self) -> list[float]:
        return [e.val.error for e in self.epochs if e.val is not None and e.val.error is not None]

    def still_improving(self, step: float) -> bool:
        """Validation error fell by more than ``step`` in the last epoch: the budget cut a run in progress."""
        errors = self.val_errors()
        return len(errors) >= 2 and errors[-2] - errors[-1] > step

    def may_close(self, gap: float, step: float) -> bool:
        """Still improving fast enough that a gap of ``gap`` may be a matter of budget.

        Extrapolates the last epoch's fall in validation error over another run as long
        as this one. Learning curves flatten, so this is generous to the model: a gap it
        cannot close even so is not explained by the short budget.
        """
        errors = self.val_errors()
        return self.still_improving(step) and (errors[-2] - errors[-1]) * len(errors) >= gap


def _batches(ctx, split: str, loader: Iterable, limit: int | None = None):
    """Batches of ``loader`` (the ``split``), through the context's guarded reader (a deadline per batch)."""
    for i, batch in enumerate(ctx.read(split, loader)):
        if limit is not None and i >= limit:
            return
        yield batch


def _score(ctx, model: nn.Module, loader, max_batches: int, task: str, target_var: float | None,
           transform: Callable[[Any], Any] | None, split: str = "train") -> SplitScore | None:
    if loader is None:
        return None
    model.eval()
    total_loss = 0.0
    correct = 0.0
    scored = 0.0
    sq = 0.0
    n = 0
    ignore = getattr(ctx.spec.loss_fn, "ignore_index", None)
    with torch.no_grad():
        for batch in _batches(ctx, split, loader, max_batches):
            batch = to_device(batch, ctx.device)
            if transform is not None:
                batch = transform(batch)
            outputs, targets = ctx.forward_fn(model, batch)
            loss = ctx.spec.loss_fn(outputs, targets)
            out = next(iter_tensors(outputs))
            tgt = next(iter_tensors(targets))
            k = int(tgt.shape[0]) if tgt.dim() > 0 else 1
            total_loss += float(loss) * k
            n += k
            if task == "classification":
                hits, samples = correct_share(out, tgt, ignore)
                correct += hits
                scored += samples
            elif task == "regression" and out.numel() == tgt.numel():
                sq += float(((out.reshape(-1).float() - tgt.reshape(-1).float()) ** 2).sum()) / max(1, out[0].numel())
    model.train()
    if n == 0:
        return None
    error = None
    if task == "classification" and scored:
        error = 1.0 - correct / scored
    elif task == "regression" and target_var:
        error = (sq / n) / target_var
    return SplitScore(total_loss / n, error, n)


def target_variance(ctx, loader, max_batches: int) -> float | None:
    values = []
    for batch in _batches(ctx, "train", loader, max_batches):
        batch = to_device(batch, ctx.device)
        with torch.no_grad():
            if ctx.spec.forward is not None:
                return None
            _, targets = unpack_batch(batch)
        values.append(next(iter_tensors(targets)).float().reshape(-1))
    if not values:
        return None
    v = torch.cat(values)
    return float(v.var()) if v.numel() > 1 else None


def zero_inputs_transform(ctx) -> Callable[[Any], Any]:
    """Zero every input tensor of a batch, leaving the targets (see ``probes.overfit.one_batch.zero_inputs``)."""
    return lambda batch: zero_inputs(batch, ctx)


def short_training(ctx, budget: Budget, eval_batches: int, transform: Callable[[Any], Any] | None = None,
                   label: str = "short training",
                   on_epoch: Callable[[EpochRecord], bool] | None = None,
                   adjust: Callable[[nn.Module, torch.optim.Optimizer], None] | None = None) -> TrainingRun:
    """Train a fresh model on the training loader for the steps ``budget`` plans; evaluate each epoch.

    ``on_epoch``, when given, sees each epoch's record and may stop the run by
    returning True (``stopped_by`` is then "caller"): the tuner's pruning uses it.
    ``adjust``, when given, changes the fresh model and its optimizer before the
    scheduler is built (the differential experiments of ``probes.training.variants``).

    Raises:
        CheckIncomplete: the run reached its safety limit (``budget.seconds``, or the
            running check's own deadline) before its planned steps: a verdict on
            part of the run would depend on the machine's speed.
    """
    task = ctx.task
    train_loader = ctx.loader("train")
    val_loader = ctx.loader("val")
    test_loader = ctx.loader("test")
    try:
        per_epoch = len(train_loader)
    except TypeError:
        per_epoch = None
    limit = None if per_epoch is None else max(1, int(math.ceil(per_epoch * budget.data_fraction)))
    full = None if limit is None else budget.epochs * limit
    # The model's cost is counted only when it could shorten the run: a run within
    # min_steps anyway is not reduced, and the user's forward is not called once more.
    unreduced = min(budget.steps, full) if full is not None else budget.steps
    cost = step_gflop(ctx) if math.isfinite(budget.gflop) and unreduced > budget.min_steps else None
    planned = planned_steps(budget, limit, cost)
    guard = _SafetyLimit(ctx, budget, label, planned)
    var = target_variance(ctx, train_loader, eval_batches) if task == "regression" else None
    records: list[EpochRecord] = []
    stopped_by = "epochs"
    start = time.perf_counter()
    with isolated_rng(ctx.seed), restored_generators(train_loader):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        if adjust is not None:
            adjust(model, optimizer)
        scheduler = ctx.spec.scheduler(optimizer) if ctx.spec.scheduler else None
        params = trainable_count(model)
        monitor = StepMonitor(ctx.device, lambda: roots_of(model, ctx.spec.loss_fn, ctx.spec.forward, optimizer,
                                                           getattr(train_loader, "dataset", None)))
        steps = 0
        for epoch in range(1, budget.epochs + 1):
            model.train()
            iterator = iter(_batches(ctx, "train", train_loader, limit))
            while True:
                guard.check(steps)
                t0 = time.perf_counter()
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                fetched = time.perf_counter()
                batch = to_device(batch, ctx.device)
                if transform is not None:
                    batch = transform(batch)
                t1 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                outputs, targets = ctx.forward_fn(model, batch)
                loss = ctx.spec.loss_fn(outputs, targets)
                if not torch.isfinite(loss.detach()):
                    stopped_by = "nan"
                    break
                loss.backward()
                if ctx.spec.grad_clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.spec.grad_clip_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                t2 = time.perf_counter()
                size = batch_size_of(targets) or 0
                monitor.step(t1 - t0, t2 - t1, size, copy_s=t1 - fetched)
                guard.stepped(t2 - t0)
                steps += 1
                if steps % 20 == 0:
                    ctx.report_progress(f"{label}, epoch {epoch}", steps, float(loss.detach()))
                if steps >= planned:
                    # The last step of the last epoch is the end of the epochs, not a cut.
                    stopped_by = "epochs" if full is not None and planned >= full else "steps"
                    break
            guard.check(steps, evaluating=True)
            began_eval = time.perf_counter()
            with isolated_rng(ctx.seed + epoch):
                records.append(EpochRecord(
                    epoch=epoch, steps=steps, seconds=time.perf_counter() - start,
                    train=_score(ctx, model, ctx.loader("train"), eval_batches, task, var, transform),
                    val=_score(ctx, model, val_loader, eval_batches, task, var, transform, "val"),
                    test=_score(ctx, model, test_loader, eval_batches, task, var, transform, "test"),
                ))
            guard.evaluated(time.perf_counter() - began_eval)
            if stopped_by != "epochs":
                break
            if on_epoch is not None and on_epoch(records[-1]):
                stopped_by = "caller"
                break
            if steps >= planned:
                break
    error_name = "1 - accuracy" if task == "classification" else "relative MSE" if var else "loss"
    res = monitor.finish()
    return TrainingRun(tuple(records), stopped_by, error_name, params, dataclasses.replace(budget, steps=planned),
                       res, cost)


class _SafetyLimit:
    """The wall-clock safety limits of one run: ``budget.seconds``, and the running check's deadline.

    Neither shortens the run: reaching one raises :class:`CheckIncomplete`, naming
    the run, how far it got and the config key to raise. Against the check's
    deadline it stops early enough to raise this itself (a reserve of twice the
    slowest step and the last evaluation, at least 5 s), so that the failure is
    memoised with the measurement and every later reader is told at once.
    """

    def __init__(self, ctx, budget: Budget, label: str, planned: int):
        self.ctx, self.budget, self.planned = ctx, budget, planned
        self.name = "the short training run" + ("" if label == "short training" else f" ({label})")
        self.start = time.perf_counter()
        self.slowest = 0.0
        self.eval_s = 0.0

    def stepped(self, seconds: float) -> None:
        self.slowest = max(self.slowest, seconds)

    def evaluated(self, seconds: float) -> None:
        self.eval_s = seconds

    def check(self, steps: int, evaluating: bool = False) -> None:
        where = f"{'the evaluation after ' if evaluating else ''}{steps} of {self.planned} steps"
        elapsed = time.perf_counter() - self.start
        key = f"{self.budget.section}.max_seconds"
        if elapsed > self.budget.seconds:
            raise CheckIncomplete(
                f"{self.name} stopped at its safety limit of {self.budget.seconds:g} s after {where} "
                f"({key}); its verdicts would rest on part of the run. Raise {key} (the machine is slower "
                f"than the limit assumes), or lower {self.budget.section}.max_gflop / "
                f"{self.budget.section}.min_steps / --profile quick for a shorter run.")
        reserve = max(5.0, 2 * self.slowest + self.eval_s)
        if self.ctx.time_left() < reserve:
            timeout = self.ctx.config.get("run.check_timeout_s")
            raise CheckIncomplete(
                f"{self.name} stopped at the check's safety limit (run.check_timeout_s = {timeout:g} s) "
                f"after {where}; its verdicts would rest on part of the run. Raise run.check_timeout_s, or "
                f"lower {self.budget.section}.max_gflop / {self.budget.section}.min_steps / "
                f"--profile quick for a shorter run.")
